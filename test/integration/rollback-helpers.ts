// Shared set-up for the rollback tests: a hub in its own network namespace and
// agents behind a NAT router (recipe B), a real Nix system profile per host
// (recipe D), and fixture systems whose activation can cut the network.
//
// The "network" is part of each fixture system, as it is on NixOS: the
// BENTO_AFTER_SWITCH_HOOK runs right after switch-to-configuration repoints
// the current system, and looks at which system is now active:
//   label contains "cutnet"   -> delete the client's default route (hub unreachable)
//   label contains "killagent" -> also SIGKILL the agent (a switch restarting the agent)
//   anything else             -> restore the default route
// So re-activating the old system (the rollback) also brings the network back,
// exactly like rolling back a bad network configuration would.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet, HUB_BIN, CLIENT_BIN } from '../helpers/fleet.js';
import type { Daemon } from '../helpers/proc.js';
import { createNat, type NatNet } from '../fixtures/netns.js';
import { makeNixEnv, runStandin, writeFixtureConfig, type FixtureOptions, type NixEnv } from '../fixtures/nix.js';
import { durableJobs } from '../helpers/state.js';

export const HUB_PORT = 2222;

export interface JobRec { id: string; host: string; action: string; state: string; reason: string | null; exitCode: number | null; endedAt: string | null; startedAt: string | null }

export async function jobRecords(fleet: TestFleet): Promise<JobRec[]> {
  return (await durableJobs(fleet.fleetDir)) as JobRec[];
}

export interface NatFleet {
  fleet: TestFleet;
  nat: NatNet;
  close(): Promise<void>;
}

/** A fleet whose hub runs in the NAT's hub namespace. */
export async function natFleet(opts: { heartbeatMs?: number } = {}): Promise<NatFleet> {
  const nat = await createNat('bento-rb');
  const fleet = await TestFleet.create({ heartbeatMs: opts.heartbeatMs ?? 1000 });
  fleet.hub = nat.spawnIn(nat.hub, 'bento-hub', process.execPath, [HUB_BIN, 'serve', '--dir', fleet.fleetDir, '--listen', `${nat.hubAddr}:${HUB_PORT}`]);
  await fleet.waitServing();
  return {
    fleet, nat,
    async close() {
      await fleet.close().catch(() => undefined);
      await nat.destroy();
    },
  };
}

export interface GuardedHost {
  name: string;
  nix: NixEnv;
  configFile: string;
  agentConfig: string;
  pidFile: string;
  /** Write the host's configuration.nix (what the next rebuild builds). */
  setConfig(o: Omit<FixtureOptions, 'host'>): Promise<void>;
  start(): Daemon;
}

/** Register a host, give it a real profile with `installed` active, and write its agent config. */
export async function guardedHost(nf: NatFleet, name: string, extra: Record<string, unknown> = {}): Promise<GuardedHost> {
  const { fleet, nat } = nf;
  await fleet.addHost(name);
  const nix = await makeNixEnv(path.join(fleet.dir, `nix-${name}`));
  const configFile = path.join(fleet.dir, `${name}-configuration.nix`);
  const pidFile = path.join(fleet.dir, `${name}.agent.pid`);
  const hook = [
    'case "$(readlink "$BENTO_CURRENT_SYSTEM")" in',
    `  *killagent*) kill -9 "$(cat ${pidFile})" ;;`,
    'esac',
    'case "$(readlink "$BENTO_CURRENT_SYSTEM")" in',
    '  *cutnet*) ip route del default 2>/dev/null; echo "fixture: network cut" ;;',
    '  *) ip route replace default via 10.99.0.1; echo "fixture: network up" ;;',
    'esac',
  ].join('\n');
  const rebuildEnv = { ...nix.env, BENTO_AFTER_SWITCH_HOOK: hook };
  const agentConfig = await fleet.agentConfig(name, {
    hub: `ssh://${nat.hubAddr}:${HUB_PORT}`,
    configuration: configFile,
    rebuildEnv,
    currentSystem: nix.currentSystem,
    systemProfile: nix.profile,
    rollbackTimeoutMs: 3000,
    connectTimeoutMs: 2000,
    backoff: { initialMs: 100, maxMs: 500 },
    ...extra,
  });
  const host: GuardedHost = {
    name, nix, configFile, agentConfig, pidFile,
    setConfig: (o) => writeFixtureConfig(configFile, { host: name, ...o }),
    start() {
      const d = nat.spawnIn(nat.client, `agent-${name}`, process.execPath, [CLIENT_BIN, 'run', '--config', agentConfig]);
      fleet.agents.set(name, d);
      void writeFile(pidFile, String(d.child.pid));
      return d;
    },
  };
  // The machine as installed: generation 1 of a real profile, activated by its own switch-to-configuration.
  await host.setConfig({ label: 'installed' });
  const r = await runStandin(nix, ['switch', '-I', `nixos-config=${configFile}`], { BENTO_AFTER_SWITCH_HOOK: '' });
  if (r.code !== 0) throw new Error(`installing ${name} failed:\n${r.stdout}\n${r.stderr}`);
  return host;
}

export interface TriggerRun { code: number; events: Array<Record<string, unknown>>; end: Record<string, unknown> | undefined; stderr: string }

export async function trigger(fleet: TestFleet, host: string, action = 'switch', timeoutMs = 60_000): Promise<TriggerRun> {
  const r = await fleet.hubCli(['trigger', host, '--json', '--action', action], timeoutMs);
  const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: r.code, events, end: events.find((e) => e['ev'] === 'end'), stderr: r.stderr };
}
