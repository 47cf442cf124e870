// The agent's pull settings (top-level keys of the agent config, validated
// here so client/config.ts only lists them).
import path from 'node:path';
import { isFingerprint } from '../../common/protocol/fingerprint.js';
import { isAction, ACTIONS, type Action } from '../../common/protocol/messages.js';
import { parseEndpoint, type Endpoint } from '../net/endpoint.js';

export interface PullFrom {
  /** A stock OpenSSH sftp server (upstream Bento's chroot), e.g. ssh://old-hub:22. */
  endpoint: Endpoint;
  /** Login user there; default: the host name (upstream's convention). */
  user: string;
  /** Pinned host key of that server. */
  hostFingerprint: string;
}

export interface PullSettings {
  /** Where the published configuration appears: a symlink swapped atomically. */
  configDir: string;
  /** Rebuild as soon as a changed configuration arrives (else wait for a trigger). */
  autoApply: boolean;
  /** The action such a rebuild runs. */
  autoApplyAction: Action;
  /** Fallback pull period; 0 turns the timer off. */
  pullIntervalMs: number;
  /** Each period is lengthened by a uniform random delay in [0, pullJitterMs]. */
  pullJitterMs: number;
  /** Upload each job's compressed log into logs/. */
  logUpload: boolean;
  /** Update flake inputs this often (upstream SELF_UPDATE); 0 = never. */
  flakeUpdateIntervalMs: number;
  /** Run inside a copy of the configuration; a changed flake.lock means rebuild. */
  flakeUpdateCommand: string[];
  /** Pull from a stock sftp server instead of the hub (migration from upstream Bento). */
  pullFrom: PullFrom | null;
}

export const PULL_KEYS = [
  'configDir', 'autoApply', 'autoApplyAction', 'pullIntervalMs', 'pullJitterMs', 'logUpload',
  'flakeUpdateIntervalMs', 'flakeUpdateCommand', 'pullFrom',
] as const;

export const DEFAULT_PULL_INTERVAL_MS = 15 * 60_000;

export function parsePullSettings(o: Record<string, unknown>, stateDir: string, name: string, bad: (msg: string) => never): PullSettings {
  const bool = (k: string, def: boolean): boolean => {
    const v = o[k] ?? def;
    if (typeof v !== 'boolean') bad(`"${k}" must be true or false`);
    return v as boolean;
  };
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = o[k] ?? def;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) bad(`"${k}" must be an integer in ${min}..${max}`);
    return v as number;
  };
  const configDir = o['configDir'] ?? path.join(stateDir, 'config');
  if (typeof configDir !== 'string' || !path.isAbsolute(configDir)) bad('"configDir" must be an absolute path');
  const action = o['autoApplyAction'] ?? 'switch';
  if (!isAction(action)) bad(`"autoApplyAction" must be one of ${ACTIONS.join(', ')}`);
  const pullIntervalMs = int('pullIntervalMs', DEFAULT_PULL_INTERVAL_MS, 0, 7 * 24 * 3600_000);
  if (pullIntervalMs > 0 && pullIntervalMs < 100) bad('"pullIntervalMs" must be 0 (off) or at least 100');
  const cmd = o['flakeUpdateCommand'] ?? ['nix', '--extra-experimental-features', 'nix-command flakes', 'flake', 'update'];
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === 'string' && a !== '')) bad('"flakeUpdateCommand" must be a non-empty argv array');
  let pullFrom: PullFrom | null = null;
  const pf = o['pullFrom'];
  if (pf !== undefined && pf !== null) {
    if (typeof pf !== 'object' || Array.isArray(pf)) bad('"pullFrom" must be { "url": "ssh://server:22", "hostFingerprint": "SHA256:...", "user"? }');
    const p = pf as Record<string, unknown>;
    for (const k of Object.keys(p)) if (!['url', 'user', 'hostFingerprint', 'proxy', 'proxyCommand'].includes(k)) bad(`"pullFrom": unknown setting "${k}"`);
    if (typeof p['url'] !== 'string' || !p['url'].startsWith('ssh://')) bad('"pullFrom.url" must be an ssh:// URL of the sftp server');
    if (!isFingerprint(p['hostFingerprint'])) bad('"pullFrom.hostFingerprint" must be the server host key\'s "SHA256:..." fingerprint (ssh-keygen -lf)');
    if (p['user'] !== undefined && (typeof p['user'] !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(p['user']))) bad('"pullFrom.user" must be a user name');
    let endpoint: Endpoint;
    try {
      endpoint = parseEndpoint({ url: p['url'] as string, proxy: p['proxy'] as string | undefined, proxyCommand: p['proxyCommand'] as string | undefined });
    } catch (err) {
      return bad(`"pullFrom": ${(err as Error).message}`);
    }
    pullFrom = { endpoint, user: (p['user'] as string | undefined) ?? name, hostFingerprint: p['hostFingerprint'] as string };
  }
  return {
    configDir: configDir as string,
    autoApply: bool('autoApply', true),
    autoApplyAction: action as Action,
    pullIntervalMs,
    pullJitterMs: int('pullJitterMs', Math.round(pullIntervalMs / 5), 0, 24 * 3600_000),
    logUpload: bool('logUpload', true),
    flakeUpdateIntervalMs: int('flakeUpdateIntervalMs', 0, 0, 365 * 24 * 3600_000),
    flakeUpdateCommand: cmd as string[],
    pullFrom,
  };
}
