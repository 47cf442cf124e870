// ed25519 key pairs that are known to work. ssh2's generator occasionally
// (about 1 in 256) drops a leading zero byte of the public key
// (mscdex/ssh2#1390, #1513), giving a key nothing can use. Every key this
// project makes (hub host keys, the demo's agents, test and bench fleets)
// comes from here: the pair must parse, sign and verify, or it is drawn again.
import ssh2 from 'ssh2';

export interface KeyPairText { private: string; public: string }

export function generateEd25519(comment?: string): KeyPairText {
  for (let i = 0; i < 50; i++) {
    const keys = ssh2.utils.generateKeyPairSync('ed25519', comment ? { comment } : {});
    const priv = ssh2.utils.parseKey(keys.private);
    const pub = ssh2.utils.parseKey(keys.public);
    if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) continue;
    const blob = pub.getPublicSSH();
    const sig = priv.sign(Buffer.from('bento'));
    if (priv.getPublicSSH().equals(blob) && blob.length === 51 && !(sig instanceof Error) && pub.verify(Buffer.from('bento'), sig) === true) return keys;
  }
  throw new Error('could not generate a valid ed25519 key pair');
}
