// The hub's host key is pinned by fingerprint, for the agent's connection and
// for the pull's own connection alike. Several hubs may each have their own
// key: any pinned fingerprint is accepted (hubFingerprints), so revoking one
// hub's key is removing its fingerprint from the list. ssh2 only tells "host key rejected",
// so the pin remembers what was offered, for an error that says both.
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';

export interface HostKeyPin {
  /** ssh2's hostVerifier. */
  verify(key: Buffer): boolean;
  /** The fingerprint of a refused key, or null when none was refused. */
  readonly offered: string | null;
}

export function pinHostKey(fingerprints: string | readonly string[]): HostKeyPin {
  const pinned = new Set(typeof fingerprints === 'string' ? [fingerprints] : fingerprints);
  let offered: string | null = null;
  return {
    verify(key: Buffer): boolean {
      const fp = fingerprintOfBlob(key);
      if (pinned.has(fp)) return true;
      offered = fp;
      return false;
    },
    get offered() { return offered; },
  };
}
