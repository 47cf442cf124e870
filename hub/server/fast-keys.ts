// ssh2 signs and verifies with PEM strings, which OpenSSL (3.0, in Node 20)
// decodes again on every call. Profiled in a 5,000-agent connect
// (docs/performance.md): the host key signature cost ~1.1 ms and the agent's
// signature check ~0.6 ms of hub CPU per handshake, out of ~6 ms. For ed25519 keys (what `init` and agents
// use) these helpers keep the decoded KeyObject instead; the signatures are
// byte-for-byte the same (ed25519 is deterministic). Other key types take
// ssh2's own path unchanged.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';

const ED25519 = 'ssh-ed25519';

/**
 * The hub host key for ssh2.Server's hostKeys: the raw key as before, or for
 * ed25519 the parsed key whose sign() uses a decoded KeyObject.
 */
export function hostKeyForServer(raw: Buffer): Buffer | { key: ssh2.ParsedKey } {
  const parsed = ssh2.utils.parseKey(raw);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== ED25519) return raw;
  const pem = parsed.getPrivatePEM();
  if (!pem) return raw;
  let priv: KeyObject;
  try {
    priv = createPrivateKey(pem);
  } catch {
    return raw;
  }
  // Same contract as ssh2's BaseKey.sign: a Buffer, or an Error (never a throw).
  (parsed as { sign(data: Buffer, algo?: string): Buffer | Error }).sign = (data: Buffer, algo?: string): Buffer | Error => {
    try {
      return sign(typeof algo === 'string' && algo ? algo : null, data, priv);
    } catch (err) {
      return err as Error;
    }
  };
  return { key: parsed };
}

const publicKeys = new WeakMap<ssh2.ParsedKey, KeyObject | null>();

/**
 * The KeyObject of an ed25519 public key from its SSH wire form
 * (string "ssh-ed25519", string key[32]). Imported as JWK: with Node 20's
 * OpenSSL 3.0 that takes ~0.03 ms, where decoding the same key from PEM or
 * DER takes ~0.25 ms, and a storm meets every key for the first time.
 */
function ed25519PublicKey(wire: Buffer): KeyObject | null {
  if (wire.length !== 51 || wire.readUInt32BE(0) !== 11 || wire.toString('latin1', 4, 15) !== ED25519 || wire.readUInt32BE(15) !== 32) return null;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: wire.subarray(19).toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

/** key.verify(data, signature, hashAlgo) === true, without re-decoding an ed25519 key's PEM each time. */
export function verifySignature(key: ssh2.ParsedKey, data: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  if (key.type !== ED25519) return key.verify(data, signature, hashAlgo) === true;
  let pub = publicKeys.get(key);
  if (pub === undefined) {
    pub = ed25519PublicKey(key.getPublicSSH());
    publicKeys.set(key, pub);
  }
  if (pub === null) return key.verify(data, signature, hashAlgo) === true;
  try {
    return verify(typeof hashAlgo === 'string' && hashAlgo ? hashAlgo : null, data, pub, signature);
  } catch {
    return false;
  }
}
