// Names the cluster uses in NATS: KV buckets, the output stream, and subject
// tokens built from hub keys (host names, job ids, anything a store is given).
//
// A NATS subject token (and so a KV key) cannot hold '.', '*', '>' or
// whitespace, and KV keys allow only [-/_=.A-Za-z0-9]. Keys are therefore
// escaped: [A-Za-z0-9-] stays as it is (host names and most job ids read the
// same in `nats kv ls`), every other byte of the UTF-8 form becomes `_XX`
// (upper-case hex), and the empty key is a lone `_`. The mapping is one to
// one, so two different keys can never share a subject.

/** [A-Za-z0-9-] by char code (a regex per character cost more than the rest of decoding). */
function plainCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45;
}
/** A key (or token) of plain characters only: it is its own token, and the token its own key. */
const ALL_PLAIN = /^[A-Za-z0-9-]+$/;
const HEX2 = /^[0-9A-F]{2}$/;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const STORE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function encodeToken(key: string): string {
  if (key === '') return '_';
  // One test for the whole key, not one per character: every entry a watch delivers is decoded, and
  // loading 90,000 registry entries spent 6 % of a CLI edit's time in these two (profile of `add-host` at 45,000 hosts).
  if (ALL_PLAIN.test(key)) return key;
  let out = '';
  for (const ch of key) {
    if (ch.length === 1 && plainCode(ch.charCodeAt(0))) { out += ch; continue; }
    for (const b of Buffer.from(ch, 'utf8')) out += `_${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The key a token stands for, or null when it is not one encodeToken could have made. */
export function decodeToken(token: string): string | null {
  if (token === '_') return '';
  if (ALL_PLAIN.test(token)) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    const c = token.charCodeAt(i);
    if (c === 95) { // '_'
      const hex = token.slice(i + 1, i + 3);
      if (!HEX2.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else if (plainCode(c)) {
      bytes.push(c);
      i += 1;
    } else {
      return null;
    }
  }
  const key = Buffer.from(bytes).toString('utf8');
  return encodeToken(key) === token ? key : null; // rejects invalid UTF-8 and non-canonical escapes
}

export function isValidPrefix(prefix: string): boolean {
  return PREFIX.test(prefix);
}

export function isValidStoreName(name: string): boolean {
  return STORE_NAME.test(name);
}

/** Everything one fleet keeps in NATS, under its prefix (several fleets, or test cases, share one NATS). */
export interface ClusterNames {
  readonly prefix: string;
  /** KV bucket of a keyed store ('jobs', 'hosts', ...). */
  bucket(store: string): string;
  /** The subject a KV key is written to (what @nats-io/kv itself uses: $KV.<bucket>.<key>). */
  kvSubject(bucket: string, key: string): string;
  /** The stream holding job output, and the subject of one job's output in it. */
  readonly outputStream: string;
  readonly outputSubjects: string;
  outputSubject(jobId: string): string;
  /** Event bus subjects: <prefix>.ev.<host>.<job, or __ for an event of no job> */
  eventSubject(host: string, jobId: string | null): string;
  eventFilter(filter: { all: true } | { host: string } | { jobId: string }): string;
}

export function clusterNames(prefix: string): ClusterNames {
  if (!isValidPrefix(prefix)) throw new Error(`invalid cluster prefix ${JSON.stringify(prefix)}`);
  const ev = `${prefix}.ev`;
  return {
    prefix,
    bucket(store) {
      if (!isValidStoreName(store)) throw new Error(`invalid store name ${JSON.stringify(store)}`);
      return `${prefix}_${store}`;
    },
    kvSubject: (bucket, key) => `$KV.${bucket}.${encodeToken(key)}`,
    outputStream: `${prefix}_output`,
    outputSubjects: `${prefix}.out.>`,
    outputSubject: (jobId) => `${prefix}.out.${encodeToken(jobId)}`,
    // "__" marks "no job": encodeToken never makes it (a '_' is always followed by two hex digits).
    eventSubject: (host, jobId) => `${ev}.${encodeToken(host)}.${jobId === null ? '__' : encodeToken(jobId)}`,
    eventFilter(f) {
      if ('all' in f) return `${ev}.>`;
      if ('host' in f) return `${ev}.${encodeToken(f.host)}.*`;
      return `${ev}.*.${encodeToken(f.jobId)}`;
    },
  };
}
