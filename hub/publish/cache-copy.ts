// After a successful build, make the system available to hosts that switch to
// the hub's prebuilt closure (`bento-hub trigger --prebuilt`):
//   - a GC root at state/builds/NAME.system, so the path survives a
//     nix-collect-garbage on the hub (needed when the hub serves its own store
//     with nix-serve or harmonia, and by `bento-hub diff`);
//   - with hub.json publish.copyTo, `nix copy --to COPYTO PATH`, e.g. a
//     signed static cache `file:///var/cache/bento?secret-key=/etc/bento/cache.sk`
//     that the hub's "cache" service serves (docs/cache-secrets-reboot.md).
// The store URL may name a key file; only its scheme and path are recorded or
// logged (query parameters are dropped), never the key.
import path from 'node:path';
import { lastLines, runCapture } from './sources.js';

export interface CacheCopy {
  /** publish.copyTo without its query (no key file names in records or logs). */
  to: string;
  ok: boolean;
  durationMs: number;
  error?: string;
}

export function redactStoreUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function copyArgv(copyTo: string, storePath: string): string[] {
  return ['nix', '--extra-experimental-features', 'nix-command', 'copy', '--to', copyTo, storePath];
}

/** Register dir/NAME.system as a GC root for storePath; false (never a throw) if Nix refuses. */
export async function keepAlive(dir: string, host: string, storePath: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const root = path.join(dir, `${host}.system`);
  const r = await runCapture(['nix-store', '--realise', storePath, '--add-root', root], { cwd: dir, env, timeoutMs: 120_000 });
  return r.code === 0;
}

export async function copyToCache(o: {
  copyTo: string; storePath: string; cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; onLine?(line: string): void;
}): Promise<CacheCopy> {
  const t0 = Date.now();
  const argv = copyArgv(o.copyTo, o.storePath);
  const shown = [...argv.slice(0, -2), redactStoreUrl(o.copyTo), o.storePath];
  o.onLine?.(`$ ${shown.join(' ')}`);
  const r = await runCapture(argv, { cwd: o.cwd, env: o.env, timeoutMs: o.timeoutMs, onLine: (l) => o.onLine?.(l) });
  const ok = r.code === 0 && !r.timedOut;
  const error = ok ? undefined
    : r.spawnError ? `cannot run nix: ${r.spawnError}`
    : r.timedOut ? `nix copy timed out after ${o.timeoutMs} ms`
    : `nix copy exited ${r.code ?? r.signal}: ${lastLines(r.stderr || r.stdout, 3)}`;
  return { to: redactStoreUrl(o.copyTo), ok, durationMs: Date.now() - t0, ...(error ? { error } : {}) };
}
