// The hub's side of the bounded follower (common/platform/follower.ts): the
// one setting every follower of this hub gets (hub.json
// limits.followerBufferBytes), the counts the metrics show, and the adapter
// from the event bus to a follower. Bus delivery never waits (types.ts,
// guarantee 4): a subscriber that writes to a socket or an SSE stream hands
// each event to its follower, which holds at most its bound and skips or cuts
// past it, so a reader that stalls costs the hub that bound and no more.
import { FollowerStats } from '../../common/platform/follower.js';
import type { EventBus, EventFilter, HubEvent, Subscription } from './types.js';

export interface FollowerLimits {
  /** Output held per follower (admin socket, dashboard stream) that does not keep up; more is skipped with a notice. */
  followerBufferBytes: number;
}

export const FOLLOWER_DEFAULTS: Readonly<FollowerLimits> = Object.freeze({ followerBufferBytes: 4 * 1024 * 1024 });
export const FOLLOWER_RANGES: Record<keyof FollowerLimits, [number, number]> = { followerBufferBytes: [64 * 1024, 256 * 1024 * 1024] };

/** Events that are never skipped (starts, ends, summaries) held for one follower; past this its stream is cut. */
export const FOLLOWER_KEPT_BYTES = 16 * 1024 * 1024;

/** What each follower of the hub is given. */
export interface FollowerPolicy {
  maxQueuedBytes: number;
  stats: FollowerStats;
}

export function followerPolicy(limits: FollowerLimits = FOLLOWER_DEFAULTS): FollowerPolicy {
  return { maxQueuedBytes: limits.followerBufferBytes, stats: new FollowerStats() };
}

/** The part of a follower the adapter needs (a Follower, an SseStream wrapper). */
export interface FollowerSink {
  push(text: string, group?: string): void;
  onClose(fn: () => void): void;
}

/** One rendered event: its text, and a group (a job id) when it may be skipped. */
export interface Rendered { text: string; group?: string }

/**
 * Subscribe `sink` to the bus: each event goes through `render` (null: not
 * for this follower) into the sink; the subscription ends with the sink
 * (cut, ended, or its reader left) or with unsubscribe().
 */
export function followBus(bus: EventBus, filter: EventFilter, sink: FollowerSink, render: (e: HubEvent) => Rendered | null): Subscription {
  let sub: Subscription | null = bus.subscribe(filter, (e) => {
    const r = render(e);
    if (r) sink.push(r.text, r.group);
  });
  const stop = (): void => { sub?.unsubscribe(); sub = null; };
  sink.onClose(stop);
  return { unsubscribe: stop };
}
