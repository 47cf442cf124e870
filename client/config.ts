// The agent's JSON config: loaded once, validated with messages that name the
// field and say what to write instead. Paths default to NixOS locations.
import { readJsonFile } from '../common/platform/json-file.js';
import { BentoError } from '../common/protocol/errors.js';
import { hostNameProblem, isHostName } from '../common/protocol/names.js';
import { isFingerprint } from '../common/protocol/fingerprint.js';
import { parseEndpoint, type Endpoint, type EndpointInput } from './net/endpoint.js';
import type { EndpointOrder } from './net/endpoint-order.js';
import { PULL_KEYS, parsePullSettings, type PullSettings } from './pull/settings.js';
import { ISSUE9_KEYS, parseCacheSettings, parseSecretsDir, parseRebootOnKernelChange, parseRebootCommand, parseRebootMethod, type CacheSettings, type RebootMethod } from './cache/settings.js';
import { parseLocalPageSettings, type LocalPageSettings } from './web/settings.js';
import { POST_SWITCH_KEYS, parsePostSwitchSettings, type PostSwitchSettings } from './jobs/post-switch.js';
import { MACHINE_ID_KEYS, parseMachinePin } from './jobs/machine-id.js';
import { HEALTH_KEYS, parseHealthSettings, type HealthSettings } from './jobs/health-check.js';

export interface ClientConfig {
  name: string;
  endpoints: Endpoint[];
  /** "listed": try endpoints in the listed order; "spread": a stable per-host order over equivalent hubs (client/net/endpoint-order.ts). */
  endpointOrder: EndpointOrder;
  /** The first pinned hub key fingerprint (kept for what pins one key). */
  hubFingerprint: string;
  /** Every pinned hub key fingerprint: any of them is accepted (several hubs with their own keys). */
  hubFingerprints: string[];
  identityFile: string;
  stateDir: string;
  /** argv the action is appended to; default ["nixos-rebuild"]. */
  rebuildCommand: string[];
  flake: string | null;
  configuration: string | null;
  /** Extra environment for the rebuild command. */
  rebuildEnv: Record<string, string>;
  currentSystem: string;
  systemProfile: string;
  /** Local ports the hub may reach through the reverse forward. */
  allowForwardPorts: number[];
  connectTimeoutMs: number;
  backoff: { initialMs: number; maxMs: number };
  /** Magic rollback for switch/test jobs (docs/rollback.md); default true. */
  rollback: boolean;
  /** After a switch the agent must complete a fresh connection to the hub within this, or it rolls back. */
  rollbackTimeoutMs: number;
  /** Config pull, log upload and flake-input updates (client/pull/settings.ts): top-level keys configDir, autoApply, ... */
  pull: PullSettings;
  /** The host-local "upgrade now" page and its unix socket (client/web/settings.ts, docs/web.md); null = off. */
  localPage: LocalPageSettings | null;
  /** Hub binary cache through the tunnel (client/cache/, docs/cache-secrets-reboot.md); null = off. */
  cache: CacheSettings | null;
  /** Where delivered secrets land (tmpfs); default /run/bento-secrets. */
  secretsDir: string;
  /** Reboot after a successful switch when kernel, initrd or modules changed (upstream REBOOT); default false. */
  rebootOnKernelChange: boolean;
  /** argv run to reboot; default ["systemctl", "reboot"]. */
  rebootCommand: string[];
  /** "reboot" (default) or "kexec": load the new kernel and `systemctl kexec`, falling back to rebootCommand. */
  rebootMethod: RebootMethod;
  /** Files whose change makes the agent exit 0 when idle, for its supervisor to restart it (client/restart/); default none. */
  restartOnChange: string[];
  /** Run after every switch/boot/test job with BENTO_* variables (client/jobs/post-switch.ts); null = none. */
  postSwitch: PostSwitchSettings | null;
  /** The host's own health check after a successful switch/test (client/jobs/health-check.ts, docs/rollouts.md); null = none. */
  health: HealthSettings | null;
  /** This host's pinned machine id: switch/boot/test only activate systems pinned to /etc/machine-id (client/jobs/machine-id.ts); null = no guard. */
  machineId: string | null;
  /** Where this host's machine id is read; default /etc/machine-id. */
  machineIdFile: string;
}

const DEFAULTS = {
  identityFile: '/etc/ssh/ssh_host_ed25519_key',
  stateDir: '/var/lib/bento-client',
  rebuildCommand: ['nixos-rebuild'],
  currentSystem: '/run/current-system',
  systemProfile: '/nix/var/nix/profiles/system',
  allowForwardPorts: [22],
  connectTimeoutMs: 20_000,
  backoff: { initialMs: 1_000, maxMs: 60_000 },
  rollbackTimeoutMs: 90_000,
};

const KNOWN = new Set([
  'name', 'hub', 'endpoints', 'endpointOrder', 'proxy', 'proxyCommand', 'hubFingerprint', 'hubFingerprints', 'identityFile', 'stateDir', 'rebuildCommand',
  'flake', 'configuration', 'rebuildEnv', 'currentSystem', 'systemProfile', 'allowForwardPorts',
  'connectTimeoutMs', 'backoff', 'rollback', 'rollbackTimeoutMs',
  ...PULL_KEYS,
  'localPage', 'restartOnChange',
  ...ISSUE9_KEYS,
  ...POST_SWITCH_KEYS, ...MACHINE_ID_KEYS, ...HEALTH_KEYS,
]);

export function validateClientConfig(raw: unknown, source = 'config'): ClientConfig {
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: ${msg}`); };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('expected a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) bad(`unknown setting "${k}"`);
  if (!isHostName(o['name'])) bad(`"name": ${typeof o['name'] === 'string' ? hostNameProblem(o['name']) : 'required, a DNS label like "web1"'}`);
  const pins: string[] = [];
  if (o['hubFingerprint'] !== undefined) {
    if (!isFingerprint(o['hubFingerprint'])) bad(`"hubFingerprint" must be the hub key's "SHA256:..." fingerprint (run \`bento-hub fingerprint\` on the hub)`);
    pins.push(o['hubFingerprint'] as string);
  }
  if (o['hubFingerprints'] !== undefined) {
    const list = o['hubFingerprints'];
    if (!Array.isArray(list) || list.length === 0 || list.length > 64) bad('"hubFingerprints" must list 1 to 64 hub key fingerprints ("SHA256:...", one per hub key)');
    (list as unknown[]).forEach((f, i) => { if (!isFingerprint(f)) bad(`"hubFingerprints"[${i}] must be a hub key's "SHA256:..." fingerprint (run \`bento-hub fingerprint\` on that hub)`); });
    for (const f of list as string[]) if (!pins.includes(f)) pins.push(f);
  }
  if (pins.length === 0) bad('set "hubFingerprint" (or "hubFingerprints", one per hub key): the hub key\'s "SHA256:..." fingerprint (run `bento-hub fingerprint` on the hub)');
  const endpointOrder = o['endpointOrder'] ?? 'listed';
  if (endpointOrder !== 'listed' && endpointOrder !== 'spread') bad('"endpointOrder" must be "listed" (try endpoints as listed) or "spread" (equivalent hubs: each host its own stable order)');

  const inputs: EndpointInput[] = [];
  if (o['hub'] !== undefined) {
    if (typeof o['hub'] !== 'string') bad('"hub" must be a URL like "ssh://hub.example:2222"');
    inputs.push({ url: o['hub'] as string, proxy: o['proxy'] as string | undefined, proxyCommand: o['proxyCommand'] as string | undefined });
  } else if (o['proxy'] !== undefined || o['proxyCommand'] !== undefined) {
    bad('"proxy"/"proxyCommand" at the top level apply to "hub"; inside "endpoints" give them per endpoint');
  }
  if (o['endpoints'] !== undefined) {
    if (!Array.isArray(o['endpoints'])) bad('"endpoints" must be an array');
    for (const e of o['endpoints'] as unknown[]) {
      if (typeof e === 'string') inputs.push({ url: e });
      else if (typeof e === 'object' && e !== null) inputs.push(e as EndpointInput);
      else bad('each endpoint is a URL string or { "url", "proxy"?, "proxyCommand"? }');
    }
  }
  if (inputs.length === 0) bad('set "hub" (e.g. "ssh://hub.example:2222") or "endpoints"');
  const endpoints = inputs.map((i, n) => {
    try {
      return parseEndpoint(i);
    } catch (err) {
      return bad(`endpoint ${n + 1}: ${(err as Error).message}`);
    }
  });

  const str = (k: string, def: string): string => {
    const v = o[k] ?? def;
    if (typeof v !== 'string' || v === '') bad(`"${k}" must be a non-empty string`);
    return v as string;
  };
  const optStr = (k: string): string | null => {
    const v = o[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v === '') bad(`"${k}" must be a non-empty string`);
    return v as string;
  };
  const rebuildCommand = o['rebuildCommand'] ?? DEFAULTS.rebuildCommand;
  if (!Array.isArray(rebuildCommand) || rebuildCommand.length === 0 || !rebuildCommand.every((a) => typeof a === 'string')) {
    bad('"rebuildCommand" must be a non-empty argv array, e.g. ["/run/current-system/sw/bin/nixos-rebuild"]');
  }
  const flake = optStr('flake');
  const configuration = optStr('configuration');
  if (flake && configuration) bad('set "flake" or "configuration", not both');
  if (flake && !flake.includes('#')) bad('"flake" must be "PATH#ATTRIBUTE", e.g. "/etc/bento/config#web1"');
  const rebuildEnv = o['rebuildEnv'] ?? {};
  if (typeof rebuildEnv !== 'object' || rebuildEnv === null || Object.values(rebuildEnv).some((v) => typeof v !== 'string')) {
    bad('"rebuildEnv" must be an object of strings');
  }
  const ports = o['allowForwardPorts'] ?? DEFAULTS.allowForwardPorts;
  if (!Array.isArray(ports) || !ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)) bad('"allowForwardPorts" must be an array of ports');
  const int = (k: string, def: number, min: number, max: number): number => {
    const v = o[k] ?? def;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) bad(`"${k}" must be an integer in ${min}..${max}`);
    return v as number;
  };
  const backoff = { ...DEFAULTS.backoff, ...((o['backoff'] as object | undefined) ?? {}) };
  if (!Number.isInteger(backoff.initialMs) || !Number.isInteger(backoff.maxMs) || backoff.initialMs < 10 || backoff.maxMs < backoff.initialMs) {
    bad('"backoff" must be { "initialMs" >= 10, "maxMs" >= initialMs }');
  }
  const rollback = o['rollback'] ?? true;
  if (typeof rollback !== 'boolean') bad('"rollback" must be true or false');
  return {
    name: o['name'] as string,
    endpoints,
    endpointOrder: endpointOrder as EndpointOrder,
    hubFingerprint: pins[0]!,
    hubFingerprints: pins,
    identityFile: str('identityFile', DEFAULTS.identityFile),
    stateDir: str('stateDir', DEFAULTS.stateDir),
    rebuildCommand: rebuildCommand as string[],
    flake,
    configuration,
    rebuildEnv: rebuildEnv as Record<string, string>,
    currentSystem: str('currentSystem', DEFAULTS.currentSystem),
    systemProfile: str('systemProfile', DEFAULTS.systemProfile),
    allowForwardPorts: ports as number[],
    connectTimeoutMs: int('connectTimeoutMs', DEFAULTS.connectTimeoutMs, 100, 600_000),
    backoff,
    rollback: rollback as boolean,
    rollbackTimeoutMs: int('rollbackTimeoutMs', DEFAULTS.rollbackTimeoutMs, 1_000, 86_400_000),
    pull: parsePullSettings(o, str('stateDir', DEFAULTS.stateDir), o['name'] as string, bad),
    localPage: parseLocalPageSettings(o['localPage'], bad),
    cache: parseCacheSettings(o['cache'], bad),
    secretsDir: parseSecretsDir(o['secretsDir'], bad),
    rebootOnKernelChange: parseRebootOnKernelChange(o['rebootOnKernelChange'], bad),
    rebootCommand: parseRebootCommand(o['rebootCommand'], bad),
    rebootMethod: parseRebootMethod(o['rebootMethod'], bad),
    restartOnChange: parseRestartOnChange(o['restartOnChange'], bad),
    postSwitch: parsePostSwitchSettings(o, bad),
    health: parseHealthSettings(o, bad),
    ...parseMachinePin(o, bad),
  };
}

export async function loadClientConfig(file: string): Promise<ClientConfig> {
  const raw = await readJsonFile(file);
  return validateClientConfig(raw, file);
}

function parseRestartOnChange(raw: unknown, bad: (msg: string) => never): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 16 || !raw.every((p) => typeof p === 'string' && p.startsWith('/') && p.length <= 4096 && !p.includes('\0'))) {
    bad('restartOnChange must be a list of at most 16 absolute paths');
  }
  return raw as string[];
}
