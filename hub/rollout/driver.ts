// Who drives a rollout (docs/rollouts.md, "Several hubs"). Each rollout has
// one driver, named in its record (records.ts `driver`): the hub that started
// it. When that hub is dead, a live hub takes it over by compare-and-swap on
// the record (epoch + 1), and a hub that is not sure it is in touch with the
// others (its heartbeat has not come back: NATS away, or it was frozen) acts
// on nothing until it is, by which time it sees whether it still drives.
//
// One hub drives every rollout; after a restart its new run takes over the
// old run's rollouts the same way (the old run is not alive). A cluster asks
// the hubs' liveness (hub/cluster/liveness.ts), wired in hub/topology.ts.
import { randomUUID } from 'node:crypto';
import { BentoError } from '../../common/protocol/errors.js';
import type { Driver, RolloutRecord } from './records.js';

export interface RolloutDriving {
  /** This hub's name and run (a fresh id per process start). */
  readonly hub: string;
  readonly run: string;
  /** May this hub act as a driver now? (A cluster: its own heartbeat came back within its lease.) */
  mayAct(): boolean;
  /** Is the hub that drives with DRIVER still alive (the same run)? */
  alive(driver: Driver): boolean;
  /** Of the live hubs, is this the one that takes over the rollouts of a dead driver? */
  successor(): boolean;
}

/** One hub: this process drives every rollout; a record driven by an earlier run of it is taken over at start. */
export function localDriving(hub: string): RolloutDriving {
  const run = randomUUID();
  return {
    hub,
    run,
    mayAct: () => true,
    alive: (d) => d.hub === hub && d.run === run,
    successor: () => true,
  };
}

/** Is D this hub's own claim? */
export function drivenBy(d: Driver | undefined, driving: Pick<RolloutDriving, 'hub' | 'run'>): boolean {
  return d !== undefined && d.hub === driving.hub && d.run === driving.run;
}

/** Does this hub drive R now, and may it act? Only then is R's next step taken here. */
export function drivesNow(r: RolloutRecord | undefined, driving: RolloutDriving): r is RolloutRecord {
  return r !== undefined && drivenBy(r.driver, driving) && driving.mayAct();
}

/** What a hub that may not act now (RolloutDriving.mayAct) answers instead of acting or writing. */
export function notCurrent(hub: string): BentoError {
  return new BentoError('CLUSTER_UNAVAILABLE', `hub ${hub} is not in touch with the other hubs right now (NATS away, or it was paused); it cannot drive a rollout until it is`);
}
