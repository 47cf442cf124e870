// Process and socket helpers shared by every test fixture.
// Every daemon a test starts goes through spawnDaemon so it is killed at the
// end of the test (or of the process) even when an assertion throws.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything the process printed so far (stdout + stderr), for error messages. */
  output(): string;
  /** How many characters it printed in all (output() keeps only the last maxOutput). */
  outputChars(): number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after graceMs. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Daemon>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const d of live) {
      try { d.child.kill('SIGKILL'); } catch { /* already gone */ }
    }
  });
}

export interface SpawnDaemonOptions extends SpawnOptions {
  /** Keep at most this many characters of output in memory. */
  maxOutput?: number;
}

export function spawnDaemon(name: string, cmd: string, args: string[], opts: SpawnDaemonOptions = {}): Daemon {
  installExitHook();
  const maxOutput = opts.maxOutput ?? 200_000;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let buf = '';
  let chars = 0;
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    chars += text.length;
    buf += text;
    if (buf.length > maxOutput) buf = buf.slice(buf.length - maxOutput);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  // 'exit' can come before the last bytes of the pipes are read: wait for
  // them too (what a process logs just before exiting is often what a test
  // checks), but at most 1 s, since a grandchild may hold the pipes open.
  const drained = Promise.all([child.stdout, child.stderr].map((s) => new Promise<void>((r) => {
    if (!s || s.readableEnded || s.destroyed) r(); else s.once('close', () => r());
  })));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      const t = setTimeout(() => resolve(code), 1000);
      void drained.then(() => { clearTimeout(t); resolve(code); });
    });
    child.once('error', (err) => { buf += `\n[spawn error] ${String(err)}`; resolve(null); });
  });
  let stopping: Promise<void> | undefined;
  const daemon: Daemon = {
    name,
    child,
    output: () => buf,
    outputChars: () => chars,
    exited,
    stop(graceMs = 3000) {
      if (stopping) return stopping;
      stopping = (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        live.delete(daemon);
      })();
      return stopping;
    },
  };
  live.add(daemon);
  void exited.then(() => live.delete(daemon));
  return daemon;
}

/**
 * A free TCP port on HOST for a daemon the test starts next. Picked at random
 * below the kernel's ephemeral range (32768-60999 by default): a port the
 * kernel hands out is also what the next outgoing connect() may take as its
 * local port, and with two test files running at once a daemon started a
 * moment later could then fail with EADDRINUSE. Checked by binding it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 15_000 + Math.floor(Math.random() * 17_000);
    // A port handed out earlier may not be bound yet (a cluster's hubs get theirs long before they start).
    if (handedOut.has(port)) continue;
    if (await canBind(host, port) && reserve(port)) return handOut(port);
  }
  return handOut(await bindAndRelease(host, 0)); // everything tried was taken: let the kernel pick
}

/** Ports this process's freePort returned: never twice (at most a few hundred per test file). */
const handedOut = new Set<number>();
function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

/**
 * Claim PORT for this test file among the files of one run (run-tests.ts
 * sets BENTO_TEST_PORTS to a directory of its own): a file per port, created
 * exclusively. A port free now may be one another file's server gave up a
 * moment ago and binds again (a NATS server killed and restarted on its
 * port): with three files at a time, another file took such a port and the
 * restart failed "address already in use" (2026-12-08). Run alone, a file
 * checks only its own ports.
 */
function reserve(port: number): boolean {
  const dir = process.env['BENTO_TEST_PORTS'];
  if (!dir) return true;
  try {
    writeFileSync(path.join(dir, String(port)), String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

function canBind(host: string, port: number): Promise<boolean> {
  return bindAndRelease(host, port).then(() => true, () => false);
}

function bindAndRelease(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(got));
    });
  });
}

/** Poll until a TCP port accepts connections; bounded by timeoutMs. */
export async function waitForPort(port: number, opts: { host?: string; timeoutMs?: number; daemon?: Daemon } = {}): Promise<void> {
  const host = opts.host ?? '127.0.0.1';
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (opts.daemon && opts.daemon.child.exitCode !== null) {
      throw new Error(`${opts.daemon.name} exited (${opts.daemon.child.exitCode}) before ${host}:${port} opened:\n${opts.daemon.output()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${host}:${port}${opts.daemon ? `\n${opts.daemon.output()}` : ''}`);
    }
    await sleep(Math.min(50 * (attempt + 1), 250));
  }
}

/** Poll a predicate until it returns a truthy value; bounded by timeoutMs. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) { lastErr = err; }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * P, or ON_TIMEOUT once MS passed, whichever comes first. The timer is
 * cleared either way: `Promise.race([p, sleep(ms)])` leaves it running, and
 * a test file's process then lives until it fires (a 35 s sleep kept
 * hostile-overrun's alive for 35 s after its 4 s of tests).
 */
export async function raceTimeout<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((r) => { timer = setTimeout(() => r(onTimeout), Math.max(0, ms)); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temp directory; remove it with the returned cleanup. */
export async function tmpDir(prefix = 'bento-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
