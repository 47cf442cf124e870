// The hub's host key is pinned by fingerprint, for the agent's connection and
// for the pull's own connection alike. ssh2 only tells "host key rejected",
// so the pin remembers what was offered, for an error that says both.
import { fingerprintOfBlob } from '../../common/protocol/fingerprint.js';

export interface HostKeyPin {
  /** ssh2's hostVerifier. */
  verify(key: Buffer): boolean;
  /** The fingerprint of a refused key, or null when none was refused. */
  readonly offered: string | null;
}

export function pinHostKey(fingerprint: string): HostKeyPin {
  let offered: string | null = null;
  return {
    verify(key: Buffer): boolean {
      const fp = fingerprintOfBlob(key);
      if (fp === fingerprint) return true;
      offered = fp;
      return false;
    },
    get offered() { return offered; },
  };
}
