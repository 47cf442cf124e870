// The config pull: compare the published hash with the installed one,
// download a changed configuration into staging, verify its hash, move it
// into versions/HASH and, per policy, swap configDir to it. Also: flake-input
// updates (upstream SELF_UPDATE, done by flake-update.ts) and the upload of
// job logs. Every operation runs one at a time (a single chain), so the timer,
// a trigger and the connect check never race on the same files.
import { readdir, realpath, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'ssh2';
import { hashTree } from '../../common/platform/tree-hash.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { ClientConfig } from '../config.js';
import { currentSystemPath } from '../system.js';
import { endpointsToTry } from '../net/endpoint-order.js';
import { sftpOverClient, sftpOverFreshConnection, type SftpSession } from './connect.js';
import { downloadTree, readRemoteState, uploadFile, sftpCode } from './remote.js';
import { updateFlakeInputs, type FlakeUpdateResult } from './flake-update.js';
import { PullStore } from './store.js';
import { queueLog } from './logs-outbox.js';

export type CheckStatus = 'not-published' | 'unchanged' | 'updated' | 'ready';

export interface CheckResult {
  status: CheckStatus;
  /** The published hash (Bento layout) or the downloaded tree's hash (upstream layout). */
  hash: string | null;
  /** What configDir held before. */
  previous: string | null;
  layout: 'bento' | 'upstream' | null;
  /** "tunnel" or the endpoint of the pull's own connection. */
  via: string;
  /** Own connections only: SSH bytes at the transport stream, both ways, including the handshake. */
  bytesIn: number | null;
  bytesOut: number | null;
  downloaded: { files: number; bytes: number } | null;
}

export interface PullerOptions {
  config: ClientConfig;
  log: Logger;
  privateKey: Buffer;
  /** The agent's live SSH client, when its tunnel is up. */
  tunnel?: () => Client | null;
}

const ATTEMPTS = 3;

export class ConfigPuller {
  readonly store: PullStore;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: PullerOptions) {
    this.store = new PullStore(o.config.stateDir, o.config.pull.configDir);
  }

  init(): Promise<void> {
    return this.store.init();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** An SFTP session: pullFrom's server, else the tunnel, else a fresh connection to the hub. */
  private async session(): Promise<SftpSession> {
    const { config, log, privateKey } = this.o;
    const pf = config.pull.pullFrom;
    if (pf) {
      return sftpOverFreshConnection({ endpoints: [pf.endpoint], user: pf.user, privateKey, fingerprint: pf.hostFingerprint, timeoutMs: config.connectTimeoutMs, log });
    }
    const tunnel = this.o.tunnel?.();
    if (tunnel) {
      try {
        return await sftpOverClient(tunnel, Math.min(config.connectTimeoutMs, 15_000));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'sftp over the tunnel failed; pulling over a connection of its own');
      }
    }
    // The endpoints in the order the agent's main loop tries them this round.
    const endpoints = await endpointsToTry(config.name, config.endpoints, config.endpointOrder);
    return sftpOverFreshConnection({ endpoints, user: config.name, privateKey, fingerprint: config.hubFingerprints, timeoutMs: config.connectTimeoutMs, log });
  }

  /** Compare, fetch if changed, and install (apply) or keep it ready (not apply). */
  check(opts: { reason: string; apply: boolean }): Promise<CheckResult> {
    return this.serial(() => this.checkNow(opts));
  }

  private async checkNow(opts: { reason: string; apply: boolean }): Promise<CheckResult> {
    const { store } = this;
    const previous = await store.linked();
    let s = await this.session();
    const result = (status: CheckStatus, hash: string | null, layout: CheckResult['layout'], downloaded: CheckResult['downloaded'] = null): CheckResult => ({
      status, hash, previous, layout, via: s.via, bytesIn: null, bytesOut: null, downloaded,
    });
    let res: CheckResult;
    try {
      res = await (async (): Promise<CheckResult> => {
        for (let attempt = 1; ; attempt++) {
          const remote = await readRemoteState(s.sftp);
          const st = await store.state();
          if (!remote) return result('not-published', null, null);
          const installedOk = previous !== null && previous === st.installed && (await store.has(previous));
          let hash: string;
          let downloaded: CheckResult['downloaded'] = null;
          if (remote.layout === 'bento') {
            if (remote.hash === st.base && installedOk) return result('unchanged', remote.hash, 'bento');
            hash = remote.hash;
            if (!(await store.has(hash))) {
              const got = await this.download(s, hash);
              if (got === 'mismatch') {
                if (attempt >= ATTEMPTS) throw new BentoError('HASH_MISMATCH', `the configuration downloaded ${ATTEMPTS} times does not hash to the published ${hash}`);
                // A deploy may have replaced the version mid-download; a new session sees the new one.
                s.close();
                s = await this.session();
                continue;
              }
              downloaded = got;
            }
          } else {
            if (remote.stamp === st.upstreamStamp && installedOk) return result('unchanged', st.base, 'upstream');
            if (remote.stamp === st.readyStamp && st.ready && (await store.has(st.ready))) {
              hash = st.ready;
            } else {
              const staging = store.stagingPath();
              try {
                downloaded = await downloadTree(s.sftp, 'config', staging);
                hash = (await hashTree(staging)).hash;
                await store.install(staging, hash);
              } catch (err) {
                await rm(staging, { recursive: true, force: true });
                throw err;
              }
            }
            if (hash === st.base && installedOk) {
              await store.saveState({ upstreamStamp: remote.stamp, lastCheckAt: new Date().toISOString() });
              return result('unchanged', hash, 'upstream');
            }
          }
          const stamp = remote.layout === 'upstream' ? remote.stamp : null;
          if (opts.apply) {
            await store.swap(hash);
            await store.saveState({ base: hash, installed: hash, ready: null, readyStamp: null, upstreamStamp: stamp, lastCheckAt: new Date().toISOString() });
            await store.gc();
            this.o.log.info({ hash, previous, reason: opts.reason, via: s.via }, 'installed a new published configuration');
            return result('updated', hash, remote.layout, downloaded);
          }
          await store.saveState({ ready: hash, readyStamp: stamp, lastCheckAt: new Date().toISOString() });
          this.o.log.info({ hash, reason: opts.reason, via: s.via }, 'a new configuration is ready; waiting for a trigger (autoApply is off)');
          return result('ready', hash, remote.layout, downloaded);
        }
      })();
    } finally {
      s.close();
    }
    if (s.meter) {
      res.bytesIn = s.meter.bytesIn;
      res.bytesOut = s.meter.bytesOut;
    }
    return res;
  }

  /** Download /config into staging and keep it only if it hashes to `hash`. */
  private async download(s: SftpSession, hash: string): Promise<{ files: number; bytes: number } | 'mismatch'> {
    const staging = this.store.stagingPath();
    try {
      const got = await downloadTree(s.sftp, 'config', staging);
      const t = await hashTree(staging);
      if (t.hash !== hash) {
        this.o.log.warn({ expected: hash, got: t.hash }, 'downloaded configuration does not match the published hash');
        await rm(staging, { recursive: true, force: true });
        return 'mismatch';
      }
      await this.store.install(staging, hash);
      return got;
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Upstream's SELF_UPDATE (flake-update.ts), in the chain like every other
   * operation on the pull's files.
   */
  flakeUpdate(): Promise<FlakeUpdateResult> {
    return this.serial(() => updateFlakeInputs(this.store, this.o.config, this.o.log));
  }

  /** Queue a compressed log for upload (kept until it is uploaded; a host offline for long keeps only its newest: logs-outbox.ts). */
  async queueLog(name: string, gz: Buffer): Promise<void> {
    await queueLog({ dir: this.store.outboxDir, name, gz, log: this.o.log });
  }

  /** Upload queued logs (oldest first); returns how many went out. */
  uploadLogs(): Promise<number> {
    return this.serial(async () => {
      const names = (await readdir(this.store.outboxDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
      if (names.length === 0) return 0;
      const s = await this.session();
      let sent = 0;
      try {
        for (const name of names) {
          const local = path.join(this.store.outboxDir, name);
          try {
            await uploadFile(s.sftp, local, `logs/${name}`);
          } catch (err) {
            // 3 = permission denied: the name exists or is refused; keeping it would block the queue.
            if (sftpCode(err) === 3) this.o.log.warn({ name, err: (err as Error).message }, 'log refused by the server; dropping it');
            else throw err;
          }
          await unlink(local);
          sent++;
        }
      } finally {
        s.close();
      }
      return sent;
    });
  }

  /**
   * The published hash whose rebuild produced the running system: what the
   * agent reports as hello.configHash. A rollback (to a system no bento
   * config produced) reports null rather than a hash that is not running.
   */
  async appliedHash(): Promise<string | null> {
    const list = await this.store.applied();
    if (list.length === 0) return null;
    const current = await currentSystemPath(this.o.config.currentSystem);
    if (current === null) return list[list.length - 1]!.hash;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.system === current) return list[i]!.hash;
    return null;
  }

  /** Does some recorded rebuild explain this system? */
  async knowsSystem(system: string): Promise<boolean> {
    return (await this.store.applied()).some((e) => e.system === system);
  }

  /** Record what a successful switch/test/boot applied. */
  async recordApplied(hash: string, action: string, system: string | null): Promise<void> {
    const st = await this.store.state();
    const sys = action === 'boot' ? await realpath(this.o.config.systemProfile).catch(() => null) : system;
    await this.store.recordApplied({ hash, tree: st.installed ?? hash, system: sys, at: new Date().toISOString() });
  }
}
