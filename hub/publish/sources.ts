// Which host configurations the fleet holds: hosts/NAME/ with a
// configuration.nix (host NAME), or hosts/ANY/ with a flake.nix, which
// defines one host per nixosConfigurations attribute (as upstream Bento
// allows: the flake directory is copied whole to each of its hosts).
import { spawn } from 'node:child_process';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { isHostName, printable } from '../../common/protocol/names.js';
import { fleetPaths } from '../fleet/paths.js';
import type { PublishSettings } from './settings.js';

export interface HostSource {
  host: string;
  kind: 'configuration' | 'flake';
  /** Absolute source directory (under hosts/). */
  dir: string;
  /** hosts/... as shown to the admin. */
  label: string;
}

export interface SourceProblem {
  host: string | null;
  label: string;
  message: string;
}

export interface Discovery {
  sources: Map<string, HostSource>;
  problems: SourceProblem[];
}

/** Run flakeHostsCommand for a flake directory; the host names it defines. */
export async function flakeHosts(dir: string, settings: PublishSettings): Promise<string[]> {
  const argv = settings.flakeHostsCommand.map((a) => a.replaceAll('{dir}', dir));
  const { code, stdout, stderr } = await runCapture(argv, { cwd: dir, env: { ...process.env, ...settings.buildEnv }, timeoutMs: 120_000 });
  if (code !== 0) throw new Error(`${argv[0]} exited ${code}: ${lastLines(stderr, 3)}`);
  let out: unknown;
  try {
    out = JSON.parse(stdout);
  } catch {
    throw new Error(`${argv[0]} did not print JSON`);
  }
  const names = Array.isArray(out) ? out
    : typeof out === 'object' && out !== null && typeof (out as Record<string, unknown>)['nixosConfigurations'] === 'object'
      ? Object.keys((out as Record<string, object>)['nixosConfigurations']!) : null;
  if (!names || !names.every((n) => typeof n === 'string')) throw new Error(`${argv[0]}: expected a list of names or {"nixosConfigurations": {...}}`);
  return names as string[];
}

export async function discoverSources(fleetDir: string, settings: PublishSettings): Promise<Discovery> {
  const hostsDir = fleetPaths(fleetDir).hostsDir;
  const sources = new Map<string, HostSource>();
  const problems: SourceProblem[] = [];
  let names: string[];
  try {
    names = (await readdir(hostsDir)).sort();
  } catch {
    return { sources, problems };
  }
  const realFleet = await realpath(fleetDir);
  const add = (s: HostSource): void => {
    const prev = sources.get(s.host);
    if (prev) problems.push({ host: s.host, label: s.label, message: `host ${s.host} is defined twice: by ${prev.label} and by ${s.label}` });
    else sources.set(s.host, s);
  };
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const label = `hosts/${name}`;
    const abs = path.join(hostsDir, name);
    const ls = await lstat(abs);
    let dir = abs;
    if (ls.isSymbolicLink()) {
      const real = await realpath(abs).catch(() => null);
      if (!real || !(real === realFleet || real.startsWith(`${realFleet}/`))) {
        problems.push({ host: isHostName(name) ? name : null, label, message: `${label} is a symlink that leaves the fleet directory; refused` });
        continue;
      }
      dir = real;
    }
    if (!(await stat(dir)).isDirectory()) continue;
    if (await exists(path.join(dir, 'flake.nix'))) {
      let hosts: string[];
      try {
        hosts = await flakeHosts(dir, settings);
      } catch (err) {
        problems.push({ host: isHostName(name) ? name : null, label, message: `cannot list the hosts of the flake ${label}: ${(err as Error).message}` });
        continue;
      }
      for (const h of hosts) {
        if (!isHostName(h)) problems.push({ host: null, label, message: `${label}: flake output "${printable(h)}" is not a valid host name; skipped` });
        else add({ host: h, kind: 'flake', dir, label });
      }
    } else if (isHostName(name)) {
      add({ host: name, kind: 'configuration', dir, label });
    } else {
      problems.push({ host: null, label, message: `${label}: "${printable(name)}" is not a host name and holds no flake.nix; skipped` });
    }
  }
  return { sources, problems };
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

export function lastLines(s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).join(' | ');
}

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean; spawnError: string | null }

/** Run argv, capture output, kill its whole process group on timeout. */
export function runCapture(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; onLine?: (line: string, stream: 'stdout' | 'stderr') => void }): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const partial = { stdout: '', stderr: '' };
    const feed = (which: 'stdout' | 'stderr', chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      if (which === 'stdout') stdout += text; else stderr += text;
      if (stdout.length > 8 << 20) stdout = stdout.slice(-(4 << 20));
      if (stderr.length > 8 << 20) stderr = stderr.slice(-(4 << 20));
      if (!opts.onLine) return;
      const parts = (partial[which] + text).split('\n');
      partial[which] = parts.pop() ?? '';
      for (const l of parts) opts.onLine(l, which);
    };
    child.stdout.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr.on('data', (c: Buffer) => feed('stderr', c));
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr, timedOut, spawnError: err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      for (const w of ['stdout', 'stderr'] as const) if (partial[w] && opts.onLine) opts.onLine(partial[w], w);
      resolve({ code, signal, stdout, stderr, timedOut, spawnError: null });
    });
  });
}
