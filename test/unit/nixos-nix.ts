// Shared by test/unit/nixos-*.test.ts: evaluate Nix with Debian's
// nix-instantiate (no daemon, no store writes) against the real nixpkgs lib.
// Nothing here skips: without nix-instantiate or the lib these tests fail
// with a message saying what to install or set.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// Pure evaluation needs no store: the dummy store also works without root or a nix daemon.
const NIX_OPTS = ['--store', 'dummy://'];

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = Record<string, Json>;

const libModule = (await import(pathToFileURL(path.join(ROOT, 'nixos/tests/nixpkgs-lib.mjs')).href)) as { nixpkgsLibDir(root: string): string };

let libDirCache: string | undefined;
/** nixpkgs' lib/ (BENTO_NIXPKGS_LIB, else the vendored copy); throws when missing. */
export function nixpkgsLib(): string {
  libDirCache ??= libModule.nixpkgsLibDir(ROOT);
  return libDirCache;
}

export interface NixResult { ok: boolean; value: Json; stderr: string }

/**
 * Evaluate `expr` strictly to JSON. `expr` may use `libDir` (a path to the
 * real lib) and `lib`; it runs with the project root as the working directory,
 * so ./nixos/... paths work.
 */
export function nixTry(expr: string): NixResult {
  const wrapped = `{ libDir }: let lib = import libDir; in (${expr})`;
  const r = spawnSync('nix-instantiate', [...NIX_OPTS, '--eval', '--strict', '--json', '--expr', wrapped, '--arg', 'libDir', nixpkgsLib()], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`cannot run nix-instantiate (Debian: apt-get install nix-bin): ${r.error.message}`);
  return { ok: r.status === 0, value: r.status === 0 ? (JSON.parse(r.stdout) as Json) : null, stderr: r.stderr };
}

/** Like nixTry, but the evaluation must succeed. */
export function nixEval<T = Json>(expr: string): T {
  const r = nixTry(expr);
  if (!r.ok) throw new Error(`nix evaluation failed:\n${r.stderr}\nexpression: ${expr.slice(0, 2000)}`);
  return r.value as T;
}

/** The error text of an evaluation that must fail (it is an assertion error if it succeeds). */
export function nixError(expr: string): string {
  const r = nixTry(expr);
  if (r.ok) throw new Error(`expected the evaluation to fail, got ${JSON.stringify(r.value).slice(0, 500)}\nexpression: ${expr.slice(0, 2000)}`);
  // Nix 2.8 wraps long lines; the tests match on words, not layout.
  return r.stderr.replace(/\s+/g, ' ');
}

/** A Nix string literal (for values spliced into expressions). */
export function nixStr(s: string): string {
  return `"${s.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}

/** Evaluate Bento's modules with the given configuration modules (Nix text) through nixos/tests/eval.nix. */
export function evalModules<T = Obj>(modules: string, opts: { entry?: 'module' | 'checkout' | 'none'; withBento?: boolean; select?: string } = {}): T {
  return nixEval<T>(evalExpr(modules, opts));
}

export function evalExpr(modules: string, opts: { entry?: 'module' | 'checkout' | 'none'; withBento?: boolean; select?: string } = {}): string {
  const call = `import ./nixos/tests/eval.nix { inherit libDir; entry = ${nixStr(opts.entry ?? 'module')}; withBento = ${opts.withBento ?? true}; modules = ${modules}; }`;
  return opts.select ? `(${call}).${opts.select}` : call;
}
