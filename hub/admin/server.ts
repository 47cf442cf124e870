// The admin API on a Unix socket in the fleet directory. File permissions are
// the authorisation (0600 owner, or 0660 to the admin group): whoever can
// connect is an admin. One request line per connection, then events.
//
// Every reply goes through one bounded Follower (common/platform/follower.ts):
// an admin who follows a job and stops reading (`trigger HOST | less`, a slow
// terminal) costs the hub at most limits.followerBufferBytes of its output;
// lines past that are skipped and the reader is told how many and where the
// full log is (`bento-hub job ID`).
import net from 'node:net';
import { chmod, chown, unlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { encodeLine, MAX_LINE_BYTES } from '../../common/protocol/codec.js';
import { parseAdminRequest, type AdminEvent, type AdminRequest } from '../../common/protocol/admin.js';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { Follower, formatBytes, type FollowerOut } from '../../common/platform/follower.js';
import { gzipOnto } from './gzip.js';
import { FOLLOWER_KEPT_BYTES, followerPolicy, type FollowerPolicy } from '../events/follower.js';

/** Send one event; `flushed` (when the reply goes to a socket) resolves once the reader took what was sent. */
export type Reply = ((e: AdminEvent) => void) & { flushed?: () => Promise<void> };
export type AdminHandler = (req: AdminRequest, reply: Reply, sock: net.Socket) => Promise<void>;

export class AdminServer {
  private readonly server: net.Server;

  constructor(
    private readonly socketPath: string,
    private readonly handler: AdminHandler,
    private readonly log: Logger,
    private readonly followers: FollowerPolicy = followerPolicy(),
  ) {
    this.server = net.createServer((sock) => this.accept(sock));
  }

  async listen(adminGroup: string | null): Promise<void> {
    await removeStaleSocket(this.socketPath);
    // Create the socket with no access for anyone but the owner, then widen.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.socketPath, () => { this.server.off('error', reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    if (adminGroup) {
      const gid = Number(execFileSync('getent', ['group', adminGroup]).toString().split(':')[2]);
      await chown(this.socketPath, process.getuid?.() ?? 0, gid);
      await chmod(this.socketPath, 0o660);
    } else {
      await chmod(this.socketPath, 0o600);
    }
  }

  private accept(sock: net.Socket): void {
    sock.on('error', (err) => this.log.debug({ err: err.message }, 'admin socket error'));
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (buf.length > MAX_LINE_BYTES) this.fail(sock, new BentoError('PROTOCOL_OVERSIZED', 'admin request too large'));
        return;
      }
      sock.off('data', onData);
      sock.pause();
      const rest = buf.subarray(nl + 1);
      if (rest.length > 0) sock.unshift(rest);
      let req: AdminRequest;
      try {
        req = parseAdminRequest(JSON.parse(buf.subarray(0, nl).toString('utf8')));
      } catch (err) {
        this.fail(sock, err instanceof SyntaxError ? new BentoError('PROTOCOL_MALFORMED', 'admin request is not JSON') : asBentoError(err));
        return;
      }
      // `list` and `status` may ask for a gzip answer (gzip.ts): the follower then writes into the compressor.
      const out = 'gzip' in req && req.gzip === true ? gzipOnto(sock) : sock;
      const follower = this.follower(out);
      // Events of one event-loop iteration leave in one writev: a fan-out to
      // 10,000 hosts answers 10,000 "accepted" lines in one turn, and then
      // "started" and "end" for every agent answer read in the same poll
      // (dozens at a time), not one write (a system call) per event. Uncorked
      // in the iteration's check phase, so no event waits for another one.
      const reply: Reply = (e) => {
        if (sock.destroyed || !follower.open) return;
        if (out === sock && !sock.writableCorked) {
          sock.cork();
          setImmediate(() => sock.uncork());
        }
        // A job's output lines may be skipped for a reader that fell behind; nothing else is.
        if (e.ev === 'output') follower.push(encodeLine(e), `${e.host}/${e.jobId}`, Buffer.byteLength(e.data));
        else follower.push(encodeLine(e));
      };
      reply.flushed = () => follower.flushed();
      this.handler(req, reply, sock).then(
        () => { if (req.op !== 'proxy') follower.end(); },
        (err) => this.fail(sock, asBentoError(err), follower),
      );
    };
    sock.on('data', onData);
  }

  private fail(sock: net.Socket, err: BentoError, follower?: Follower): void {
    if (err.code === 'INTERNAL') this.log.error({ err: err.message }, 'admin request failed');
    const line = encodeLine({ ev: 'error', code: err.code, message: err.message });
    if (follower) follower.end(line);
    else if (!sock.destroyed) sock.end(line);
  }

  /** The connection's bounded queue: skipped lines become a "skipped" event, a cut a final "cut" event. */
  private follower(out: FollowerOut): Follower {
    return new Follower({
      out,
      maxQueuedBytes: this.followers.maxQueuedBytes,
      maxKeptBytes: FOLLOWER_KEPT_BYTES,
      stats: this.followers.stats,
      skipped: (group, lines, bytes) => {
        const [host = '', jobId = ''] = group.split('/');
        return encodeLine({
          ev: 'skipped', host, jobId, lines, bytes,
          message: `${lines} lines (${formatBytes(bytes)}) of ${host}'s output skipped here: this reader fell behind; the full log: bento-hub job ${jobId}`,
        });
      },
      cut: (held) => encodeLine({ ev: 'cut', message: `the hub cut this stream: its reader fell ${formatBytes(held)} behind (see \`bento-hub status\` and \`bento-hub job ID\`)` }),
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}

/** A socket file left by a crashed hub is removed; a live one means another hub runs here. */
async function removeStaleSocket(p: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new BentoError('HUB_ALREADY_RUNNING', `another hub is already serving this fleet (${p} answers)`);
  await unlink(p).catch(() => undefined);
}
