// Build one host's staged configuration with the real Nix tools, the way the
// host itself will: `nixos-rebuild build -I nixos-config=DIR/configuration.nix`
// or `nixos-rebuild build --flake DIR#HOST` (dry-build with --dry). The
// command is hub.json publish.buildCommand. It runs in a scratch directory,
// so `./result` links never land in the tree that gets published. Its log is
// kept in state/builds/NAME.log (dry runs: NAME.dry.log); the record is
// stored by the caller through a BuildRecords (build-records.ts), so `deploy`
// does not build the same content twice and `trigger --prebuilt` finds it.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import { fleetPaths, hostFile } from '../fleet/paths.js';
import type { PublishSettings } from './settings.js';
import type { HostSource } from './sources.js';
import { lastLines, runCapture } from './sources.js';
import { copyToCache, keepAlive, type CacheCopy } from './cache-copy.js';

export interface BuildRecord {
  host: string;
  hash: string;
  dry: boolean;
  ok: boolean;
  exitCode: number | null;
  durationMs: number;
  at: string;
  /** The system store path `build` printed (null for dry-build or failure). */
  storePath: string | null;
  /** The last lines of output, for the result row. */
  tail: string;
  /** publish.copyTo: whether the closure reached the hub's cache (trigger --prebuilt needs it); absent without copyTo. */
  cache?: CacheCopy;
  /** The build's full log, on the hub that built it. */
  log: string;
  /** In a cluster: the hub that built it (its hub.json cluster.hubName). */
  hub?: string;
}

export function buildsDir(fleetDir: string): string {
  return path.join(fleetPaths(fleetDir).stateDir, 'builds');
}

export function buildArgv(settings: PublishSettings, src: Pick<HostSource, 'kind' | 'host'>, treeDir: string, dry: boolean): string[] {
  const target = src.kind === 'flake' ? ['--flake', `${treeDir}#${src.host}`] : ['-I', `nixos-config=${path.join(treeDir, 'configuration.nix')}`];
  return [...settings.buildCommand, dry ? 'dry-build' : 'build', ...target];
}

export async function readBuildRecord(fleetDir: string, host: string): Promise<BuildRecord | null> {
  try {
    return JSON.parse(await readFile(buildRecordFile(fleetDir, host, false), 'utf8')) as BuildRecord;
  } catch {
    return null;
  }
}

export interface BuildOptions {
  fleetDir: string;
  settings: PublishSettings;
  source: HostSource;
  /** The staged (dereferenced) tree to build. */
  treeDir: string;
  hash: string;
  dry: boolean;
  onLine?(line: string): void;
}

export async function buildHost(o: BuildOptions): Promise<BuildRecord> {
  const dir = buildsDir(o.fleetDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(path.join(dir, `.scratch-${o.source.host}-`));
  const argv = buildArgv(o.settings, o.source, o.treeDir, o.dry);
  const t0 = Date.now();
  const logLines: string[] = [`$ ${argv.join(' ')}`];
  let res;
  try {
    res = await runCapture(argv, {
      cwd: scratch,
      env: { ...process.env, ...o.settings.buildEnv },
      timeoutMs: o.settings.buildTimeoutMs,
      onLine: (line) => { logLines.push(line); o.onLine?.(line); },
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const ok = res.code === 0 && !res.timedOut;
  const outLast = res.stdout.trim().split('\n').pop() ?? '';
  const storePath = ok && !o.dry && outLast.startsWith('/nix/store/') ? outLast : null;
  let cache: CacheCopy | undefined;
  if (storePath) {
    // The hub's nixos-rebuild left no ./result (scratch dir): root the path so a GC cannot take it from diff or --prebuilt.
    const env = { ...process.env, ...o.settings.buildEnv };
    if (!(await keepAlive(dir, o.source.host, storePath, env))) logLines.push(`bento: warning: could not register a GC root for ${storePath}`);
    if (o.settings.copyTo) {
      cache = await copyToCache({ copyTo: o.settings.copyTo, storePath, cwd: dir, env, timeoutMs: o.settings.buildTimeoutMs, onLine: (l) => { logLines.push(l); o.onLine?.(l); } });
      logLines.push(cache.ok ? `bento: copied to ${cache.to} in ${cache.durationMs} ms` : `bento: ${cache.error}`);
    }
  }
  const why = res.spawnError ? `cannot run ${argv[0]}: ${res.spawnError}`
    : res.timedOut ? `timed out after ${o.settings.buildTimeoutMs} ms`
    : ok ? '' : `${argv[0]} exited ${res.code ?? res.signal}`;
  if (why) logLines.push(`bento: ${why}`);
  // A dry run never replaces the record of a real build (deploy reuses it; `diff` reads its storePath).
  const suffix = o.dry ? '.dry' : '';
  const log = hostFile(dir, o.source.host, `${suffix}.log`);
  await writeFile(log, `${logLines.join('\n')}\n`, { mode: 0o600 });
  const rec: BuildRecord = {
    host: o.source.host,
    hash: o.hash,
    dry: o.dry,
    ok,
    exitCode: res.code,
    durationMs: Date.now() - t0,
    at: new Date().toISOString(),
    storePath,
    tail: ok ? (cache && !cache.ok ? `built, but not copied to the cache: ${cache.error}` : '') : [why, lastLines(res.stderr || res.stdout, 4)].filter(Boolean).join(': '),
    ...(cache ? { cache } : {}),
    log,
  };
  return rec;
}

/** Where the embedded hub keeps a host's build record: state/builds/NAME.json (dry runs: NAME.dry.json). */
export function buildRecordFile(fleetDir: string, host: string, dry: boolean): string {
  return hostFile(buildsDir(fleetDir), host, dry ? '.dry.json' : '.json');
}

export async function writeBuildRecordFile(fleetDir: string, rec: BuildRecord): Promise<void> {
  await mkdir(buildsDir(fleetDir), { recursive: true, mode: 0o700 });
  await writeJsonAtomic(buildRecordFile(fleetDir, rec.host, rec.dry), rec, { mode: 0o600 });
}
