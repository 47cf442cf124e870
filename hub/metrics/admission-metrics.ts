// Prometheus view of the admission gate (hub/server/admission.ts): what was
// refused, dropped, timed out or failed before authenticating, penalties,
// and the gate's current occupancy. Counters start from the gate's totals,
// which it keeps from the moment the listener opened.
import type { MetricsRegistry } from '../../common/platform/prometheus.js';
import type { AdmissionGate } from '../server/admission.js';

export function registerAdmissionMetrics(r: MetricsRegistry, gate: AdmissionGate): void {
  const refused = r.counter('bento_handshakes_refused_total', 'Connections closed at accept, before reading a byte, by reason: penalised (the source keeps failing), per-source (limits.perSourceUnauthenticated), full (limits.maxUnauthenticated).');
  const dropped = r.counter('bento_handshakes_dropped_total', 'Unauthenticated connections closed by policy, by reason: garbage (not SSH), early-drop and queue-full (wait queue, limits.earlyDropQueued/maxQueued), evicted (a larger source gave way at limits.maxUnauthenticated).');
  const timedOut = r.counter('bento_handshakes_timed_out_total', 'Unauthenticated connections cut at a deadline, by stage: banner (limits.bannerTimeoutMs), queue or handshake (limits.handshakeTimeoutMs).');
  const failed = r.counter('bento_handshakes_failed_total', 'Unauthenticated connections the peer ended after trying, by reason: auth-failed, no-auth (key exchange, no attempt), protocol-error.');
  const penalised = r.counter('bento_sources_penalised_total', 'Penalties imposed on a source (IPv4 address or IPv6 /64) for repeated failures; it is refused at accept meanwhile.');
  for (const reason of ['penalised', 'per-source', 'full']) refused.inc({ reason }, 0);
  for (const stage of ['banner', 'queue', 'handshake']) timedOut.inc({ stage }, 0);
  penalised.inc({}, 0);
  gate.stats.observe((e, n) => {
    switch (e.kind) {
      case 'refused': refused.inc({ reason: e.reason }, n); break;
      case 'dropped': dropped.inc({ reason: e.reason }, n); break;
      case 'timed-out': timedOut.inc({ stage: e.stage }, n); break;
      case 'failed': failed.inc({ reason: e.reason }, n); break;
      case 'penalised': penalised.inc({}, n); break;
    }
  });
  r.gauge('bento_handshakes_in_progress', 'SSH handshakes holding a slot (limits.maxHandshakes).', () => [[{}, gate.inProgress]]);
  r.gauge('bento_handshakes_waiting', 'Connections waiting for a handshake slot.', () => [[{}, gate.waiting]]);
  r.gauge('bento_handshakes_unauthenticated', 'Unauthenticated connections in all (banner, waiting, in handshake).', () => [[{}, gate.unauthenticated]]);
  r.gauge('bento_sources_penalised', 'Sources refused at accept right now.', () => [[{}, gate.penalisedSources]]);
}
