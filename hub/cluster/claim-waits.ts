// Claims of this hub that wait for the holds bucket (holds.ts). A claim's
// compare-and-swap that NATS did not acknowledge in time is retried by the
// store in the background, and counts once the watch shows it landed; until
// then the host's hello and job records wait. Each wait ends in one of
// three ways, and must end:
//   - 'landed': the watch shows this hub's record at the claim's epoch;
//   - rejected: another hub claimed the host at that epoch or above first,
//     or a newer session of the host (here) claims it now;
//   - 'again': the hold moved past the revision the claim expected in some
//     other way (its former hub let go, the record was removed): the store
//     drops its retry as superseded, so the claim must be made anew.
// A wait settled by a record of another session's claim would take the host
// for a closed session and release the live one's hold (claim-wait test).
import { BentoError } from '../../common/protocol/errors.js';
import type { LiveSession } from '../server/live-session.js';
import type { HostHold } from './hold-records.js';

export type ClaimOutcome = 'landed' | 'again';

export interface ClaimWait {
  host: string;
  epoch: number;
  /** The revision of the hold the claim expected. */
  base: number;
  session: LiveSession;
}

interface Waiter extends ClaimWait { resolve: (r: ClaimOutcome) => void; reject: (e: Error) => void }

export class ClaimWaits {
  private readonly waiting = new Map<string, Waiter>();

  /** Wait for claim C; a wait of the same host already here is over (a newer claim began). */
  wait(c: ClaimWait): Promise<ClaimOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.get(c.host)?.reject(new BentoError('STATE_CONFLICT', 'a newer claim of this host began'));
      this.waiting.set(c.host, { ...c, resolve, reject });
    });
  }

  /** Session S of HOST claims it now: another session's wait is over. */
  claiming(host: string, s: LiveSession): void {
    const older = this.waiting.get(host);
    if (!older || older.session === s) return;
    this.waiting.delete(host);
    older.reject(new BentoError('STATE_CONFLICT', `a newer session of ${host} is claiming it`));
  }

  /** HOST's hold changed to V (null: removed, or not a host record) at REVISION; MINE: is V this hub's claim at that epoch. */
  changed(host: string, v: HostHold | null, revision: number, mine: (v: HostHold, epoch: number) => boolean): void {
    const w = this.waiting.get(host);
    if (!w) return;
    if (v && mine(v, w.epoch)) {
      this.waiting.delete(host);
      w.resolve('landed');
    } else if (v && v.epoch >= w.epoch) {
      this.waiting.delete(host);
      w.reject(new BentoError('STATE_CONFLICT', `host ${host} was claimed by hub ${v.hub ?? '?'} first`));
    } else if (revision > w.base) {
      this.waiting.delete(host);
      w.resolve('again');
    }
  }

  /** The hub stops: every wait fails. */
  stop(): void {
    for (const w of this.waiting.values()) w.reject(new BentoError('INTERNAL', 'hub stopping'));
    this.waiting.clear();
  }
}
