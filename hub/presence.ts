// Presence: what the hub does when an agent arrives (valid hello), speaks on
// its control channel, and leaves. It keeps the live session registry, the
// host's last known facts and the event bus in step, and hands job traffic
// to the scheduler. Kept out of daemon.ts so the wiring stays wiring, and so
// the cluster's "who holds which host" (hub/holders) is told in one place:
// a hello claims the host (and the scheduler handles it only once the claim
// is in), a session that ends releases it.
import type { Hello, AgentMessage, JobEnd } from '../common/protocol/messages.js';
import { asBentoError } from '../common/protocol/errors.js';
import type { Logger } from '../common/platform/log.js';
import type { SessionRegistry } from './server/sessions.js';
import type { LiveSession } from './server/live-session.js';
import type { HostStateStore } from './store/host-state.js';
import type { Scheduler } from './jobs/scheduler.js';
import type { EventBus } from './events/types.js';
import type { HostHolders } from './holders/types.js';
import { logReboot, rebootReport } from './status/reboot-report.js';

export interface PresenceDeps {
  sessions: SessionRegistry;
  holders: Pick<HostHolders, 'claim' | 'release' | 'holder'>;
  hostStates: HostStateStore;
  scheduler: Scheduler;
  bus: EventBus;
  /** The agent server's logger: connection lines belong with the SSH ones. */
  log: Logger;
}

export interface PresenceHooks {
  onHello(s: LiveSession, hello: Hello): void;
  /** Settles once the scheduler is done with the message (the session's inbound limits count it until then). */
  onMessage(s: LiveSession, msg: AgentMessage): Promise<void>;
  onClose(s: LiveSession): void;
}

export function presence(d: PresenceDeps): PresenceHooks {
  const { sessions, holders, hostStates, scheduler, bus, log } = d;
  // The hooks are called by ssh2 event handlers: a failure is logged, never thrown into them.
  const guard = (what: string) => (err: unknown) => log.error({ err: asBentoError(err).message }, `${what} failed`);
  return {
    onHello(s, hello) {
      sessions.add(s);
      // This hub holds the host from now on (a cluster: the CAS that takes it from any other hub).
      const claimed = holders.claim(s);
      claimed.catch((err: Error) => log.error({ host: s.name, err: err.message }, 'cannot claim the host'));
      bus.publish({ kind: 'connected', host: s.name, carrier: s.origin.carrier, reconnect: hostStates.get(s.name)?.lastConnectedAt != null });
      log.info({ host: s.name, remote: s.origin.remoteAddress, carrier: s.origin.carrier, via: hello.via, agent: hello.agentVersion }, 'agent connected');
      const now = new Date().toISOString();
      // Back after a reboot it asked for (kernel change): logged and kept for `status`.
      const reboot = rebootReport(hello);
      if (reboot) logReboot(log, s.name, reboot);
      hostStates.update(s.name, {
        ...(reboot ? { lastReboot: reboot } : {}),
        lastConnectedAt: now, lastSeenAt: now, agentVersion: hello.agentVersion, system: hello.system,
        generation: hello.generation, configHash: hello.configHash, carrier: s.origin.carrier, remoteAddress: s.origin.remoteAddress,
      }).catch(guard('host state write'));
      scheduler.onHello(s, hello, claimed).catch(guard('hello handling'));
    },
    onMessage(s, msg) {
      // What a host runs changes with a job, not only at hello (a replayed result is older than the hello).
      if (msg.type === 'job.end' && !msg.replayed) {
        const now = runsAfter(msg, s.hello);
        if (s.hello) Object.assign(s.hello, now);
        // Written only when it changed: a fan-out of builds or no-op switches costs no host-fact writes.
        const known = hostStates.get(s.name);
        const changed = Object.fromEntries(Object.entries(now).filter(([k, v]) => known?.[k as keyof typeof now] !== v));
        if (Object.keys(changed).length > 0) hostStates.update(s.name, changed).catch(guard('host state write'));
      }
      return scheduler.onMessage(s, msg).catch(guard(`${msg.type} handling`));
    },
    onClose(s) {
      if (!s.hello || !sessions.remove(s)) return;
      holders.release(s);
      bus.publish({ kind: 'disconnected', host: s.name, carrier: s.origin.carrier });
      log.info({ host: s.name, remote: s.origin.remoteAddress }, 'agent disconnected');
      // A host that went to another hub is that hub's to describe: this session's last bytes are older news.
      const elsewhere = holders.holder(s.name);
      if (!elsewhere || elsewhere.local) hostStates.update(s.name, { lastSeenAt: new Date(s.lastInbound).toISOString() }).catch(guard('host state write'));
      scheduler.onDisconnect(s.name).catch(guard('disconnect handling'));
    },
  };
}

/**
 * What a (live, not replayed) job.end says the host runs now. An agent that
 * does not report the generation (older versions) leaves it unknown after a
 * switch or boot rather than showing the generation from before the job.
 */
export function runsAfter(end: JobEnd, hello: Hello | null): Partial<Pick<Hello, 'configHash' | 'system' | 'generation'>> {
  const out: Partial<Pick<Hello, 'configHash' | 'system' | 'generation'>> = {};
  if (end.configHash !== undefined) out.configHash = end.configHash;
  if (end.system !== undefined) out.system = end.system;
  if (end.generation !== undefined) out.generation = end.generation;
  else if ((end.action === 'switch' || end.action === 'boot') && hello?.generation != null) out.generation = null;
  return out;
}
