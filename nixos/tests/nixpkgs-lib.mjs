// Where the real nixpkgs `lib` is, for evaluating the NixOS modules on a
// machine without nixpkgs (test/unit/nixos-*.test.ts, nixos/docs/generate.mjs).
//
//   BENTO_NIXPKGS_LIB   a nixpkgs checkout, or its lib/ directory; when set,
//                       it must be right (no silent fallback);
//   otherwise           <project root>/../shared/vendor/nixpkgs-lib-25.05,
//                       then /work/shared/vendor/nixpkgs-lib-25.05 (the
//                       vendored copy, nixpkgs 25.05's lib).
//
// A missing lib is an error with the places tried, never a reason to skip:
// the module tests are worth nothing without the real module system.
import { existsSync } from 'node:fs';
import path from 'node:path';

const VENDORED = 'nixpkgs-lib-25.05';

/** The lib directory (holding default.nix and modules.nix) inside `dir`, or `dir` itself, or null. */
function libIn(dir) {
  for (const d of [path.join(dir, 'lib'), dir]) {
    if (existsSync(path.join(d, 'default.nix')) && existsSync(path.join(d, 'modules.nix'))) return d;
  }
  return null;
}

/** Absolute path of nixpkgs' lib/ for `import`; throws naming what was tried. */
export function nixpkgsLibDir(projectRoot) {
  const fromEnv = process.env.BENTO_NIXPKGS_LIB;
  if (fromEnv) {
    const found = libIn(path.resolve(projectRoot, fromEnv));
    if (!found) throw new Error(`BENTO_NIXPKGS_LIB=${fromEnv}: no nixpkgs lib there (expected DIR/lib/default.nix or DIR/default.nix with modules.nix)`);
    return found;
  }
  const tried = [path.resolve(projectRoot, '..', 'shared', 'vendor', VENDORED), path.join('/work/shared/vendor', VENDORED)];
  for (const dir of tried) {
    const found = libIn(dir);
    if (found) return found;
  }
  throw new Error(`nixpkgs lib not found (tried ${tried.join(', ')}); set BENTO_NIXPKGS_LIB to a nixpkgs checkout or its lib/ directory`);
}
