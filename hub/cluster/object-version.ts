// Compare-and-swap on an object's metadata (for `<prefix>_configs` and
// `<prefix>_logfiles`). The client library deletes and updates an object by
// name, whatever version of it is there now: a sweep that judged an object
// from a scan a while ago (object-scan.ts) would then delete a copy a deploy
// has just reused or a hub has just stored again, and the record written next
// would name an object that is gone. So both sides write the object's
// metadata message (the last message on `$O.<bucket>.M.<name>`, NATS ADR-20)
// only if it is still the message they read:
//   - refresh(): a deploy reusing an object makes it young again (mtime now,
//     same chunks, so a mirror reading it meanwhile is not disturbed);
//   - deleteScanned(): the sweep deletes exactly the version it scanned, and
//     leaves an object rewritten since.
// Exactly one of two racing writers wins, on old servers too (kv-cas.ts: the
// guard nats-server below 2.9.21 needs).
import { headers, nuid, type NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Base64UrlPaddedCodec } from '@nats-io/obj';
import { BentoError } from '../../common/protocol/errors.js';
import { exactSubjectCheck, publishCas, type CasGuard } from './kv-cas.js';
import type { ObjectMeta } from './object-scan.js';

export interface ObjectVersions {
  /**
   * Give object NAME the time now, keeping its content. false when there is
   * no such object, it is deleted, or it changed while this ran: then the
   * caller stores it again.
   */
  refresh(name: string): Promise<boolean>;
  /**
   * Delete the object exactly as scanned (O.seq: its metadata message). false,
   * and nothing changed, when it was rewritten, refreshed or deleted since.
   */
  deleteScanned(o: ObjectMeta): Promise<boolean>;
}

export interface ObjectVersionOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The object store's bucket name (stream OBJ_<bucket>). */
  bucket: string;
  attemptTimeoutMs: number;
  totalMs: number;
}

const enc = new TextEncoder();

export function objectVersions(o: ObjectVersionOptions): ObjectVersions {
  const stream = `OBJ_${o.bucket}`;
  const metaSubject = (name: string): string => `$O.${o.bucket}.M.${Base64UrlPaddedCodec.encode(name)}`;
  const guard: CasGuard = {
    serverVersion: () => o.nc.info?.version,
    needed: () => !exactSubjectCheck(o.nc.info?.version),
    streamLastGuess: () => 0,
    subjectLast: async (subject) => (await o.jsm.streams.getMessage(stream, { last_by_subj: subject }))?.seq ?? 0,
    streamLast: async () => (await o.jsm.streams.info(stream)).state.last_seq,
  };
  /** Write META as NAME's metadata if its last metadata message is still number SEQ; false if it is not. */
  const swap = async (name: string, meta: Record<string, unknown>, seq: number): Promise<boolean> => {
    const h = headers();
    h.set('Nats-Rollup', 'sub'); // as the library writes metadata: only the newest message per object is kept
    try {
      await publishCas(o.js, { subject: metaSubject(name), data: enc.encode(JSON.stringify(meta)), msgID: nuid.next(), headers: h, expectLastSubjectSeq: seq },
        { attemptTimeoutMs: o.attemptTimeoutMs, totalMs: o.totalMs }, guard);
      return true;
    } catch (err) {
      if (err instanceof BentoError && err.code === 'STATE_CONFLICT') return false;
      throw err;
    }
  };
  return {
    async refresh(name) {
      const m = await o.jsm.streams.getMessage(stream, { last_by_subj: metaSubject(name) });
      if (!m) return false;
      const meta = m.json<Record<string, unknown>>();
      if (meta['deleted'] === true || typeof meta['nuid'] !== 'string') return false;
      const { revision: _r, ...plain } = meta; // the library's update() may have stored its read-side field
      return swap(name, { ...plain, mtime: new Date().toISOString() }, m.seq);
    },
    async deleteScanned(m) {
      if (!m.nuid || !(m.seq > 0)) throw new BentoError('INTERNAL', `${m.name}: no scanned version to delete`);
      // The marker the library's delete() writes: the object is gone for every reader from here.
      const marker = { name: m.name, bucket: o.bucket, nuid: m.nuid, size: 0, chunks: 0, digest: '', deleted: true, mtime: new Date().toISOString() };
      if (!await swap(m.name, marker, m.seq)) return false;
      // Only the scanned version's chunks: a newer version of the name has its own nuid.
      await o.jsm.streams.purge(stream, { filter: `$O.${o.bucket}.C.${m.nuid}` });
      return true;
    },
  };
}
