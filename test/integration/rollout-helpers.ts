// Shared set-up for the rollout tests: a real hub, real bento-client agents,
// and for each host a real Nix system profile that the nixos-rebuild stand-in
// switches (test/fixtures/nix.ts). A host's next configuration decides how its
// rebuild goes: `buildFails` makes nix-build fail for real; a label with
// "unhealthy" makes the host's own health check fail once that system is
// active. Every switch is rollback-guarded (a 3 s window), so "success" is the
// agent's verdict after its fresh connection to the hub, as in production.
import path from 'node:path';
import { TestFleet, type FleetOptions } from '../helpers/fleet.js';
import type { Daemon } from '../helpers/proc.js';
import { waitFor } from '../helpers/proc.js';
import { makeNixEnv, runStandin, writeFixtureConfig, type FixtureOptions, type NixEnv } from '../fixtures/nix.js';
import { durableJobs } from '../helpers/state.js';
import { adminRolloutStatus } from '../helpers/admin-query.js';
import { readFleetState } from '../../hub/store/open.js';
import type { JobRecord } from '../../hub/store/jobs.js';
import type { RolloutDetail } from '../../common/protocol/rollout.js';

export interface RolloutHost {
  name: string;
  nix: NixEnv;
  configFile: string;
  agentConfig: string;
  setConfig(o: Omit<FixtureOptions, 'host'>): Promise<void>;
  start(): Daemon;
}

export interface HostOptions {
  /** The host's own health check fails while a system whose label contains "unhealthy" is active. */
  health?: boolean;
  /** Extra agent settings. */
  agent?: Record<string, unknown>;
}

/** Register a host, install generation 1 of its profile, write its agent config (not started). */
export async function rolloutHost(fleet: TestFleet, name: string, o: HostOptions = {}): Promise<RolloutHost> {
  await fleet.addHost(name);
  const nix = await makeNixEnv(path.join(fleet.dir, `nix-${name}`));
  const configFile = path.join(fleet.dir, `${name}-configuration.nix`);
  const setConfig = (f: Omit<FixtureOptions, 'host'>): Promise<void> => writeFixtureConfig(configFile, { host: name, ...f });
  await setConfig({ label: 'installed' });
  const r = await runStandin(nix, ['switch', '-I', `nixos-config=${configFile}`]);
  if (r.code !== 0) throw new Error(`installing ${name} failed:\n${r.stdout}\n${r.stderr}`);
  const agentConfig = await fleet.agentConfig(name, {
    configuration: configFile,
    rebuildEnv: nix.env,
    currentSystem: nix.currentSystem,
    systemProfile: nix.profile,
    // Rollouts are not about a lost connection: a fresh one ends the window at
    // once, so a wide window costs nothing and keeps a slow handshake on a
    // loaded 2-core CI machine from rolling a healthy switch back.
    rollbackTimeoutMs: 10_000,
    backoff: { initialMs: 100, maxMs: 500 },
    ...(o.health ? {
      healthCommand: ['/bin/sh', '-c', `case "$(readlink ${nix.currentSystem})" in *unhealthy*) echo "health: the web service does not answer"; exit 1 ;; esac; echo "health: ok"`],
      healthTimeoutMs: 5000, healthIntervalMs: 500, // a failing check fails after 5 s; a slow `sh` start does not fail a passing one
    } : {}),
    ...o.agent,
  });
  return { name, nix, configFile, agentConfig, setConfig, start: () => fleet.startAgent(name, agentConfig) };
}

export async function rolloutFleet(names: string[], o: Record<string, HostOptions> = {}, fleetOptions: FleetOptions = {}): Promise<{ fleet: TestFleet; hosts: Map<string, RolloutHost> }> {
  const fleet = await TestFleet.create(fleetOptions);
  const hosts = new Map<string, RolloutHost>();
  for (const n of names) hosts.set(n, await rolloutHost(fleet, n, o[n]));
  await fleet.startHub();
  return { fleet, hosts };
}

/** Jobs recorded for `hosts` requested after `since` (ISO), from the durable state. */
export async function jobsSince(fleet: TestFleet, since: string, hosts?: string[]): Promise<JobRecord[]> {
  return (await durableJobs(fleet.fleetDir))
    .filter((j) => j.requestedAt >= since && (!hosts || hosts.includes(j.host)))
    .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}

/** `rollout status ID`, over the admin socket (test/helpers/admin-query.ts: polled every 100 ms). */
export async function rolloutStatus(fleet: TestFleet, id: string): Promise<RolloutDetail> {
  return adminRolloutStatus(fleet.fleetDir, id);
}

/** A job's stored output (what the hub recorded of its log), as one text. */
export async function jobOutput(fleet: TestFleet, jobId: string): Promise<string> {
  const state = readFleetState(fleet.fleetDir);
  try {
    return (await (await state.openOutput()).read(jobId)).map((l) => l.data).join('\n');
  } finally {
    await state.close();
  }
}

/** Poll `rollout status ID` until `pred` holds. */
export function waitRollout(fleet: TestFleet, id: string, what: string, pred: (r: RolloutDetail) => boolean, timeoutMs = 60_000): Promise<RolloutDetail> {
  return waitFor(what, async () => {
    const r = await rolloutStatus(fleet, id);
    return pred(r) ? r : null;
  }, timeoutMs, 100);
}

/** The id in the first JSON event of `rollout --json` (or --detach --json). */
export function rolloutIdOf(stdout: string): string {
  const first = stdout.split('\n').find((l) => l.startsWith('{"ev":"rollout"'));
  if (!first) throw new Error(`no rollout event in:\n${stdout}`);
  return (JSON.parse(first) as { rollout: { id: string } }).rollout.id;
}

/** The final event of a followed `rollout --json`. */
export function finalRollout(stdout: string): RolloutDetail {
  const last = stdout.split('\n').filter((l) => l.startsWith('{"ev":"rollout"')).pop();
  if (!last) throw new Error(`no rollout event in:\n${stdout}`);
  return (JSON.parse(last) as { rollout: RolloutDetail }).rollout;
}

/** The most jobs that were in flight at once (requested .. ended, the hub's own times). */
export function maxOverlap(jobs: JobRecord[]): number {
  const edges: Array<[number, number]> = [];
  for (const j of jobs) {
    edges.push([Date.parse(j.requestedAt), 1]);
    edges.push([Date.parse(j.endedAt ?? new Date().toISOString()), -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of edges) { cur += d; max = Math.max(max, cur); }
  return max;
}
