// One SSH session to the hub: pin the hub key, authenticate, open the control
// channel, say hello, wait for welcome, then keep it alive. It reports its end
// exactly once through `closed`, whatever the cause.
//
// Liveness, both ways, is SSH keepalive@openssh.com every keepaliveMs (ssh2's
// own keepalive; the hub's ssh2 answers it without any Bento code running, and
// any packet counts as life on the hub). A dead hub is noticed when its
// replies stop for two to three periods (about the old 2.5-period rule). Heartbeat messages on the control channel
// are used instead only with a hub that does not announce `keepalive: "ssh"`,
// or when the hub wants a shorter period than this connection was opened with
// (the first connection after the hub's period changed).
//
// What the agent sends goes through one bounded Follower
// (common/platform/follower.ts), as the hub's own followers do: the hub reads
// each agent at its limits.sessionBytesPerSecond (SSH flow control), and a
// job printing faster than that must not pile its output up in the agent's
// memory. Past AGENT_OUTPUT_BUFFER_BYTES the job's lines are skipped, and the
// hub (and whoever follows the job) gets one line saying how many, where they
// were; the job itself and its result are not affected.
import { Client, type ClientChannel } from 'ssh2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { LineDecoder, encodeLine } from '../../common/protocol/codec.js';
import { forHub, parseMessage, type AgentMessage, type Hello, type HubMessage, type Welcome } from '../../common/protocol/messages.js';
import { BentoError, asBentoError, isErrorCode } from '../../common/protocol/errors.js';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';
import type { Logger } from '../../common/platform/log.js';
import { Follower, formatBytes } from '../../common/platform/follower.js';
import { pinHostKey } from './host-key-pin.js';
import { serveForward } from './forward.js';

export interface HubConnectionOptions {
  stream: Duplex;
  name: string;
  privateKey: Buffer;
  /** The hub key fingerprints this agent accepts (any of them). */
  hubFingerprint: string | readonly string[];
  hello: Omit<Hello, 'type'>;
  timeoutMs: number;
  allowForwardPorts: number[];
  /** SSH keepalive interval: the hub's heartbeat period as last announced. */
  keepaliveMs?: number;
  log: Logger;
  onMessage(msg: HubMessage): void;
}

/** The hub's default heartbeat period (hub.json heartbeatMs). */
export const DEFAULT_HEARTBEAT_MS = 25_000;

/** Job output held for a hub that reads slower than the job prints; more is skipped, with a note. */
export const AGENT_OUTPUT_BUFFER_BYTES = 8 * 1024 * 1024;
/** Other messages held (results, heartbeats: few and small); more means the hub stopped reading: the channel is ended. */
const AGENT_KEPT_BYTES = 16 * 1024 * 1024;

export class HubConnection {
  private readonly client = new Client();
  /** The control channel's bounded writer (null until the channel opens). */
  private out: Follower | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastInbound = Date.now();
  private seq = 0;
  private ended = false;
  private endReason: BentoError | null = null;
  welcome: Welcome | null = null;
  /** How liveness is checked on this connection (known after the welcome). */
  liveness: 'ssh-keepalive' | 'heartbeat' | null = null;
  readonly closed: Promise<BentoError | null>;
  private resolveClosed!: (why: BentoError | null) => void;

  constructor(private readonly opts: HubConnectionOptions) {
    this.closed = new Promise((r) => { this.resolveClosed = r; });
  }

  /** Resolves with the hub's welcome; rejects with a BentoError. */
  start(): Promise<Welcome> {
    const { opts } = this;
    const pin = pinHostKey(opts.hubFingerprint);
    return new Promise<Welcome>((resolve, reject) => {
      const fail = (err: BentoError): void => { this.shutdown(err); reject(err); };
      const timer = setTimeout(() => fail(new BentoError('CONNECT_FAILED', `no welcome from the hub within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      this.closed.then((why) => { clearTimeout(timer); reject(why ?? new BentoError('CONNECT_FAILED', 'connection closed during handshake')); });

      this.client.on('ready', () => {
        this.client.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
          if (err) return fail(new BentoError('CONNECT_FAILED', `hub refused the control channel: ${err.message}`));
          this.out = this.follower(ch);
          this.attach(ch, (w) => { clearTimeout(timer); resolve(w); });
          this.send({ type: 'hello', ...opts.hello });
        });
        for (const port of opts.allowForwardPorts) {
          this.client.forwardIn('127.0.0.1', port, (err) => { if (err) opts.log.warn({ port, err: err.message }, 'hub refused the reverse forward'); });
        }
      });
      this.client.on('tcp connection', (info, accept, reject) => serveForward(this.client, opts, info, accept, reject));
      this.client.on('error', (err: Error & { level?: string }) => {
        if (pin.offered !== null) {
          fail(new BentoError('HOST_KEY_MISMATCH', `hub offered host key ${pin.offered}, but this agent pins ${[opts.hubFingerprint].flat().join(', ')}; refusing to talk to it`));
        } else if (err.level === 'client-timeout') {
          fail(new BentoError('CONNECT_FAILED', `hub stopped answering SSH keepalives (sent every ${this.keepaliveMs} ms)`));
        } else if (err.level === 'client-authentication') {
          fail(new BentoError('AUTH_REJECTED', `hub refused this agent's key for host "${opts.name}" (is it registered with \`bento-hub add-host ${opts.name}\`?)`));
        } else {
          fail(new BentoError('CONNECT_FAILED', err.message));
        }
      });
      this.client.on('close', () => this.shutdown(this.endReason ?? new BentoError('CONNECT_FAILED', 'connection closed')));
      this.client.connect({
        sock: opts.stream as unknown as net.Socket,
        username: opts.name,
        privateKey: opts.privateKey,
        readyTimeout: opts.timeoutMs,
        keepaliveInterval: this.keepaliveMs,
        keepaliveCountMax: 2,
        hostVerifier: (key: Buffer) => pin.verify(key),
      });
    });
  }

  private attach(ch: ClientChannel, onWelcome: (w: Welcome) => void): void {
    const { log } = this.opts;
    const bad = (err: BentoError): void => {
      log.error({ code: err.code, reason: err.message }, 'bad message from hub; reconnecting');
      this.shutdown(err);
    };
    const decoder = new LineDecoder((value) => {
      let msg: HubMessage;
      try {
        msg = parseMessage(value, 'hub');
      } catch (err) {
        return bad(asBentoError(err));
      }
      this.lastInbound = Date.now();
      if (msg.type === 'welcome' && !this.welcome) {
        this.welcome = msg;
        if (msg.keepalive === 'ssh' && this.keepaliveMs <= msg.heartbeatMs) {
          this.liveness = 'ssh-keepalive';
        } else {
          this.liveness = 'heartbeat';
          this.startHeartbeat(msg.heartbeatMs);
        }
        onWelcome(msg);
      } else if (msg.type === 'error') {
        const code = isErrorCode(msg.code) ? msg.code : 'INTERNAL';
        this.endReason = new BentoError(code, `hub closed the session: ${msg.message}`);
        log.warn({ code: msg.code, reason: msg.message }, 'hub sent an error');
      } else if (msg.type !== 'heartbeat') {
        this.opts.onMessage(msg);
      }
    }, bad);
    ch.on('data', (c: Buffer) => decoder.push(c));
    ch.on('close', () => this.shutdown(this.endReason ?? new BentoError('CONNECT_FAILED', 'control channel closed by the hub')));
    ch.stderr.resume();
  }

  private startHeartbeat(periodMs: number): void {
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastInbound > periodMs * 2.5) {
        this.opts.log.warn({ silentMs: Date.now() - this.lastInbound }, 'hub missed heartbeats; dropping the connection');
        this.shutdown(new BentoError('CONNECT_FAILED', 'hub stopped answering heartbeats'));
        return;
      }
      this.send({ type: 'heartbeat', seq: this.seq++ });
    }, periodMs);
  }

  /** Queue a message; false when the connection is gone. A job's output line may be skipped (see the top of this file). */
  send(msg: AgentMessage): boolean {
    if (this.ended || !this.out?.open) return false;
    // Before the welcome only hello goes out; after it, say nothing this hub would refuse (forHub).
    const line = encodeLine(forHub(msg, this.welcome));
    if (msg.type === 'job.output') this.out.push(line, msg.jobId, Buffer.byteLength(msg.data));
    else this.out.push(line);
    return true;
  }

  private follower(ch: ClientChannel): Follower {
    return new Follower({
      out: ch,
      maxQueuedBytes: AGENT_OUTPUT_BUFFER_BYTES,
      maxKeptBytes: AGENT_KEPT_BYTES,
      skipped: (jobId, lines, bytes) => {
        this.opts.log.warn({ jobId, lines, bytes }, 'the hub reads this host\'s job output slower than the job prints it: skipped lines');
        return encodeLine(forHub({
          type: 'job.output', jobId, stream: 'note',
          data: `bento: ${lines} lines (${formatBytes(bytes)}) of output skipped here by the agent: the hub reads this host's output slower than the job printed it (hub.json limits.sessionBytesPerSecond)`,
        }, this.welcome));
      },
      // The hub has not read for long: end the channel; the agent reconnects and replays its results.
      cut: () => '',
    });
  }

  private get keepaliveMs(): number {
    return this.opts.keepaliveMs ?? DEFAULT_HEARTBEAT_MS;
  }

  /** The SSH client, for features that open their own channels (sftp). */
  get ssh(): Client {
    return this.client;
  }

  get isOpen(): boolean {
    return !this.ended && this.welcome !== null;
  }

  shutdown(why: BentoError | null = null): void {
    if (this.ended) return;
    this.ended = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.client.end();
    // A dead peer never completes the SSH close; cut the stream too.
    setTimeout(() => this.opts.stream.destroy(), 500).unref();
    this.resolveClosed(why);
  }
}
