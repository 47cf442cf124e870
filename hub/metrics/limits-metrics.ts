// Prometheus view of the limits on what connected peers may cost the hub
// (issue 13 parts 2-4): sessions whose reading was paused or that were cut,
// jobs refused adoption, followers that fell behind, job output cut or
// dropped. Each part keeps its own counts; these read them at scrape time.
import type { MetricsRegistry } from '../../common/platform/prometheus.js';
import type { FollowerStats } from '../../common/platform/follower.js';
import type { InboundMonitor } from '../server/inbound-gate.js';
import type { OutboundMonitor } from '../server/outbound-guard.js';
import type { AdoptionLimiter } from '../jobs/adopt-limits.js';
import type { OutputCapStats } from '../store/output-cap.js';
import type { LogThrottle } from '../../common/platform/log-throttle.js';

export interface LimitsMetricsDeps {
  inbound: InboundMonitor;
  outbound: OutboundMonitor;
  adoption: AdoptionLimiter;
  followers: FollowerStats;
  output: OutputCapStats;
  /** What authenticating and authenticated peers asked for and were refused (server/conn-guard.ts), by kind. */
  refusals: Pick<LogThrottle, 'totals'>;
}

export function registerLimitsMetrics(r: MetricsRegistry, d: LimitsMetricsDeps): void {
  const { inbound, outbound, adoption, followers, output, refusals } = d;
  const counter = r.counterFrom.bind(r);
  counter('bento_sessions_throttled_total', 'Times the hub stopped reading an agent\'s control channel (SSH flow control), by reason: queue (its messages waited beyond limits.sessionQueuedMessages or sessionQueuedBytes; resumed at half), rate (over limits.sessionBytesPerSecond).', () => [[{ reason: 'queue' }, inbound.throttledTotal.queue], [{ reason: 'rate' }, inbound.throttledTotal.rate]]);
  r.gauge('bento_sessions_throttled', 'Agent sessions whose control channel is not being read right now.', () => [[{}, inbound.throttledNow]]);
  counter('bento_sessions_cut_total', 'Agent connections cut, by reason: overrun (the agent kept sending after the hub stopped reading: more than limits.sessionOverrunBytes; it ignores the SSH window), outbound (the agent did not read what the hub sent: more than limits.sessionOutboundBytes waited on its connection).', () => [[{ reason: 'overrun' }, inbound.overrunTotal], [{ reason: 'outbound' }, outbound.overrunTotal]]);
  counter('bento_peer_refusals_total', 'What SSH peers asked for and were refused, by kind: auth (an authentication attempt), connections (a host over limits.connectionsPerHost: its oldest connection cut), channels (over limits.channelsPerConnection), no-hello (authenticated, no hello within limits.helloTimeoutMs: cut), forwards (over limits.forwardsPerSession), subsystem, request (a global request), session-* (a session channel request), direct-tcpip, streamlocal, service-unreachable. The log names the first few of each kind per 10 s.', () => refusals.totals().map(([kind, n]) => [{ kind }, n]));
  counter('bento_jobs_adoption_refused_total', 'Jobs an agent reported that the hub has no record of and refused to record, by reason: open (limits.adoptOpenPerHost), window (limits.adoptPerWindow).', () => [[{ reason: 'open' }, adoption.refused.open], [{ reason: 'window' }, adoption.refused.window]]);
  counter('bento_followers_skipped_lines_total', 'Output lines left out of a follower\'s stream (admin socket, dashboard) because its reader fell more than limits.followerBufferBytes behind; each gap is announced.', () => [[{}, followers.skippedLines]]);
  counter('bento_followers_skipped_bytes_total', 'Bytes of those lines.', () => [[{}, followers.skippedBytes]]);
  counter('bento_followers_cut_total', 'Follower streams the hub ended because their reader fell too far behind on events that are never skipped.', () => [[{}, followers.cut]]);
  r.gauge('bento_followers', 'Open follower streams (admin requests and dashboard event streams), and those whose reader is behind.', () => [[{ state: 'open' }, followers.open], [{ state: 'behind' }, followers.behind]]);
  counter('bento_job_output_trimmed_total', 'Jobs whose stored output was cut in the middle (more than limits.jobOutputBytes).', () => [[{}, output.trimmedJobs]]);
  counter('bento_job_output_trimmed_bytes_total', 'Bytes cut from the middle of jobs\' output.', () => [[{}, output.trimmedBytes]]);
  counter('bento_job_output_dropped_total', 'Finished jobs whose stored output was dropped to keep their host under limits.hostOutputBytes (oldest first).', () => [[{}, output.droppedJobs]]);
  counter('bento_job_output_dropped_bytes_total', 'Bytes of that output.', () => [[{}, output.droppedBytes]]);
  r.gauge('bento_job_output_tail_bytes', 'Tails of running jobs held in memory until they end (jobs past their head, at most limits.jobOutputTailBytes each).', () => [[{}, output.tailBytes]]);
}
