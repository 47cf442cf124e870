// The hub's SFTP subsystem: one jail per host, implemented request by request
// on ssh2's SFTP server (no OpenSSH, no chroot, no real filesystem view). This
// file accepts a host's channels (at most 8 at once) and ends them cleanly;
// session.ts answers the requests, resolve.ts maps paths, log-quota.ts
// accounts for uploaded logs. Handled: OPEN READ WRITE CLOSE STAT LSTAT FSTAT OPENDIR READDIR
// REALPATH. Everything else (SETSTAT, FSETSTAT, MKDIR, RMDIR, REMOVE, RENAME,
// READLINK, SYMLINK, EXTENDED) gets PERMISSION_DENIED.
//
// How nothing escapes:
// - Paths are parsed into a tiny virtual namespace (vpath.ts) and never joined
//   onto a disk path as strings; ".." is refused; unknown names do not exist.
// - /config is the host's OWN published version: jails/NAME/versions/HASH,
//   HASH taken from its own version.json. The jail root is the session's
//   authenticated host name, nothing the client says.
// - Below /config every component is lstat'ed: a symlink or special file is
//   reported as absent, never followed. Files are opened with O_NOFOLLOW and
//   the opened descriptor's real path (/proc/self/fd) must lie inside the
//   version directory; directories must realpath to themselves.
// - /logs takes only new files (O_CREAT|O_EXCL|O_NOFOLLOW) with plain names,
//   under a per-host byte and file quota; logs cannot be read, listed,
//   appended to, overwritten, renamed or removed by the host.
// - Handles are per session, opaque, bounded in number, and typed: a read
//   handle cannot write, a log handle cannot read.
// One session's requests are processed in order, so quota accounting and
// handle state have no races.
import type { SFTPWrapper } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import type { PublishSettings } from '../publish/settings.js';
import type { LogArchive } from './log-archive.js';
import { LogQuotas } from './log-quota.js';
import type { OutboundWaiter } from '../server/outbound-guard.js';
import { JailSession } from './session.js';

const MAX_SESSIONS_PER_HOST = 8;

export interface SftpJailOptions {
  fleetDir: string;
  settings: PublishSettings;
  log: Logger;
  /** A cluster's log archive (log-archive.ts): finished uploads move there and the quota counts every hub's. */
  logArchive?: LogArchive;
}

export class SftpJail {
  private readonly quotas: LogQuotas;
  private readonly sessions = new Map<string, number>();

  constructor(private readonly opts: SftpJailOptions) {
    this.quotas = new LogQuotas({ settings: opts.settings, log: opts.log, ...(opts.logArchive ? { archive: opts.logArchive } : {}) });
    // Uploads a previous run could not move into the archive (NATS was away, the hub stopped).
    if (opts.logArchive) {
      void this.quotas.scan(opts.fleetDir).then((n) => { if (n) opts.log.info({ logs: n }, 'moving logs left in the jails into the cluster\'s archive'); });
    }
  }

  /** Stop moving logs into the archive (what is left stays in logs/ for the next start). */
  close(): Promise<void> {
    return this.quotas.close();
  }

  /** Serve one accepted SFTP channel for an authenticated host. */
  /** OUTBOUND: the host's connection; replies wait while it has not drained (hub/server/outbound-guard.ts). */
  serve(host: string, sftp: SFTPWrapper, outbound: OutboundWaiter | null = null): void {
    const n = (this.sessions.get(host) ?? 0) + 1;
    if (n > MAX_SESSIONS_PER_HOST) {
      this.opts.log.warn({ host }, `refused sftp session: more than ${MAX_SESSIONS_PER_HOST} at once`);
      sftp.end();
      return;
    }
    this.sessions.set(host, n);
    const session = new JailSession(host, sftp, { ...this.opts, quotas: this.quotas, outbound });
    sftp.on('close', () => {
      const left = (this.sessions.get(host) ?? 1) - 1;
      if (left <= 0) this.sessions.delete(host);
      else this.sessions.set(host, left);
      void session.closeAll();
    });
    sftp.on('error', (err: Error) => this.opts.log.debug({ host, err: err.message }, 'sftp channel error'));
    // The client is done (EOF): answer like OpenSSH's sftp-server, with exit
    // status 0 and a close; without it `ssh` exits 255 and `sftp -b` fails.
    sftp.on('end', () => {
      const raw = sftp as unknown as { _protocol?: { exitStatus(id: number, code: number): void }; outgoing?: { id: number; state: string } };
      try {
        if (raw.outgoing?.state === 'open') raw._protocol?.exitStatus(raw.outgoing.id, 0);
      } catch { /* channel already gone */ }
      sftp.end();
    });
  }
}
