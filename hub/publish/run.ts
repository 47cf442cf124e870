// `build` and `deploy` across hosts: pick the hosts, run them through a pool
// of publish.buildJobs workers, report progress, return one row per host.
import { inPool } from '../../common/platform/pool.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { RegistryFile } from '../fleet/registry.js';
import { buildHost, buildsDir, type BuildRecord } from './build.js';
import type { BuildRecords } from './build-records.js';
import { discard, stageHost } from './publish.js';
import type { PublishedStore } from './published-store.js';
import type { PublishSettings } from './settings.js';
import { discoverSources, type HostSource, type SourceProblem } from './sources.js';

export type RowResult = 'ok' | 'failed' | 'updated' | 'no-changes' | 'refused' | 'error';

export interface HostRow {
  host: string;
  source: string | null;
  result: RowResult;
  hash: string | null;
  previous: string | null;
  registered: boolean;
  build: { ok: boolean; dry: boolean; cached: boolean; durationMs: number; exitCode: number | null; storePath: string | null; log: string; cache?: BuildRecord['cache'] } | null;
  durationMs: number;
  message: string;
}

export interface Progress {
  phase(host: string, phase: string): void;
  line(host: string, line: string): void;
  done(row: HostRow): void;
}

export const NO_PROGRESS: Progress = { phase() {}, line() {}, done() {} };

/** Where build and deploy read the registry and keep their results (files, or a cluster's shared stores). */
export interface PublishStores {
  /** The registry, as the command read it. */
  registry: RegistryFile;
  builds: BuildRecords;
  published: PublishedStore;
}

export interface RunOptions {
  fleetDir: string;
  stores: PublishStores;
  settings: PublishSettings;
  /** Named hosts; empty = every host with a configuration. */
  hosts: string[];
  jobs?: number;
  progress?: Progress;
}

export interface RunResultSet {
  rows: HostRow[];
  /** Problems in hosts/ that concern no selected host. */
  warnings: string[];
}

interface Selected { source: HostSource | null; host: string; problem: string | null; registered: boolean }

/** registeredOnly (deploy): a host named on the command line must be registered, UNKNOWN_HOST otherwise. */
async function select(o: RunOptions & { registeredOnly?: boolean }): Promise<{ selected: Selected[]; warnings: string[] }> {
  const { sources, problems } = await discoverSources(o.fleetDir, o.settings);
  const registry = o.stores.registry;
  const registered = (h: string): boolean => Object.prototype.hasOwnProperty.call(registry.hosts, h);
  const byHost = new Map<string, SourceProblem>();
  const warnings: string[] = [];
  for (const p of problems) {
    if (p.host) byHost.set(p.host, p);
    else warnings.push(p.message);
  }
  let names: string[];
  if (o.hosts.length) {
    names = [...new Set(o.hosts)];
    const unknown = names.filter((h) => !sources.has(h) && !byHost.has(h) && !registered(h));
    if (unknown.length) throw new BentoError('UNKNOWN_HOST', `no configuration under hosts/ and no registered host named ${unknown.join(', ')}`);
    const unregistered = names.filter((h) => !registered(h));
    if (o.registeredOnly && unregistered.length) {
      throw new BentoError('UNKNOWN_HOST', `${unregistered.join(', ')} ${unregistered.length > 1 ? 'are' : 'is'} not registered, so nothing would fetch what is published: \`bento-hub add-host NAME --key-file KEY.pub\` first`);
    }
  } else {
    names = [...new Set([...sources.keys(), ...byHost.keys()])].sort();
  }
  if (!o.hosts.length) {
    for (const [h, p] of byHost) if (!names.includes(h)) warnings.push(p.message);
  }
  const selected = names.map((host) => {
    const p = byHost.get(host);
    const source = sources.get(host) ?? null;
    return {
      host, source, registered: registered(host),
      problem: p ? p.message : source ? null : `no configuration for ${host} under hosts/ (hosts/${host}/configuration.nix or a flake defining it)`,
    };
  });
  return { selected, warnings };
}

function baseRow(s: Selected): HostRow {
  return { host: s.host, source: s.source?.label ?? null, result: 'error', hash: null, previous: null, registered: s.registered, build: null, durationMs: 0, message: '' };
}

function buildInfo(rec: BuildRecord, cached: boolean): NonNullable<HostRow['build']> {
  return { ok: rec.ok, dry: rec.dry, cached, durationMs: rec.durationMs, exitCode: rec.exitCode, storePath: rec.storePath, log: rec.log, ...(rec.cache ? { cache: rec.cache } : {}) };
}

/** One host's work, given its source and its row to fill in (result, hash, build, message). */
type PerHost = (s: Selected & { source: HostSource }, row: HostRow, progress: Progress) => Promise<void>;

/**
 * The frame build and deploy share: select the hosts, run `perHost` for each
 * in a pool of publish.buildJobs workers, time it, report progress, and
 * return the rows sorted by host. A throw becomes the row's result: `error`,
 * or `refusedAs` for a refusal (PUBLISH_REFUSED, also a host whose source has
 * a problem, which never reaches `perHost`).
 */
async function forEachHost(o: RunOptions & { refusedAs: RowResult; registeredOnly?: boolean }, perHost: PerHost): Promise<RunResultSet> {
  const progress = o.progress ?? NO_PROGRESS;
  const { selected, warnings } = await select(o);
  const rows: HostRow[] = [];
  await inPool(selected, o.jobs ?? o.settings.buildJobs, async (s) => {
    const t0 = Date.now();
    const row = baseRow(s);
    try {
      if (s.problem || !s.source) throw new BentoError('PUBLISH_REFUSED', s.problem ?? 'no source');
      await perHost({ ...s, source: s.source }, row, progress);
    } catch (err) {
      row.result = (err as BentoError).code === 'PUBLISH_REFUSED' ? o.refusedAs : 'error';
      row.message = (err as Error).message;
    }
    row.durationMs = Date.now() - t0;
    rows.push(row);
    progress.done(row);
  });
  rows.sort((a, b) => a.host.localeCompare(b.host));
  return { rows, warnings };
}

/** `bento-hub build`: stage each host's tree, build it, record the result. */
export function runBuild(o: RunOptions & { dry: boolean }): Promise<RunResultSet> {
  return forEachHost({ ...o, refusedAs: 'error' }, async (s, row, progress) => {
    progress.phase(s.host, 'staging');
    const staged = await stageHost(o.fleetDir, s.source, buildsDir(o.fleetDir));
    row.hash = staged.hash;
    try {
      progress.phase(s.host, o.dry ? 'evaluating' : 'building');
      const rec = await buildHost({ fleetDir: o.fleetDir, settings: o.settings, source: s.source, treeDir: staged.staging, hash: staged.hash, dry: o.dry, onLine: (l) => progress.line(s.host, l) });
      row.build = buildInfo(rec, false);
      await o.stores.builds.write(rec);
      // A closure that did not reach the hub's cache (publish.copyTo) cannot be used by --prebuilt: the row says so.
      row.result = rec.ok && rec.cache?.ok !== false ? 'ok' : 'failed';
      row.message = row.result === 'ok' ? (rec.storePath ?? '') : rec.tail;
    } finally {
      await discard(staged);
    }
  });
}

/** `bento-hub deploy`: publish every changed, registered host whose build succeeded (or all, with force). */
export function runDeploy(o: RunOptions & { force: boolean }): Promise<RunResultSet> {
  return forEachHost({ ...o, refusedAs: 'refused', registeredOnly: true }, async (s, row, progress) => {
    // A jail for a host nobody can log in as: nothing to publish it to (bento-hub import skips their directories too).
    if (!s.registered) throw new BentoError('PUBLISH_REFUSED', `UNKNOWN_HOST: ${s.host} is not registered (\`bento-hub add-host ${s.host} --key-file KEY.pub\`); not published`);
    const published = o.stores.published;
    const before = await published.current(s.host);
    row.previous = before?.hash ?? null;
    progress.phase(s.host, 'staging');
    const staged = await stageHost(o.fleetDir, s.source);
    row.hash = staged.hash;
    let committed = false;
    try {
      if (before && await published.serves(s.host, staged.hash)) {
        committed = await published.unchanged(staged, before, o.settings.keepVersions);
        row.result = 'no-changes';
      } else {
        let rec = await o.stores.builds.read(s.host);
        const cached = rec !== null && rec.hash === staged.hash && rec.ok && !rec.dry;
        if (!cached) {
          progress.phase(s.host, 'building');
          rec = await buildHost({ fleetDir: o.fleetDir, settings: o.settings, source: s.source, treeDir: staged.staging, hash: staged.hash, dry: false, onLine: (l) => progress.line(s.host, l) });
          await o.stores.builds.write(rec);
        }
        row.build = buildInfo(rec!, cached);
        if (!rec!.ok && !o.force) {
          row.result = 'refused';
          row.message = `build failed, not published (--force publishes anyway): ${rec!.tail}`;
        } else {
          progress.phase(s.host, 'publishing');
          committed = true; // the store consumes the staged tree, whether it publishes or refuses
          await published.publish(staged, { buildOk: rec!.ok, keepVersions: o.settings.keepVersions }, before);
          row.result = 'updated';
          if (!rec!.ok) row.message = `published with --force although the build failed: ${rec!.tail}`;
        }
      }
    } finally {
      if (!committed) await discard(staged);
    }
  });
}
