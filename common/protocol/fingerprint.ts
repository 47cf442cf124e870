// OpenSSH-style key fingerprints: "SHA256:" + unpadded base64 of the SHA-256
// of the public key blob, exactly what `ssh-keygen -lf` prints, so an admin
// can compare the value in a client config with any OpenSSH tool.
import { createHash } from 'node:crypto';

export function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Fingerprint of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function fingerprintOfKeyLine(line: string): string {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) throw new Error('not an OpenSSH public key line');
  return fingerprintOfBlob(Buffer.from(parts[1]!, 'base64'));
}

export function isFingerprint(s: unknown): s is string {
  return typeof s === 'string' && /^SHA256:[A-Za-z0-9+/]{43}$/.test(s);
}
