// Nix store paths that travel on the wire (job.start storePath) and end up in
// argv: `nix copy --from URL PATH`, `nix-env --set PATH`,
// `PATH/bin/switch-to-configuration`. Only the exact shape Nix itself
// produces is accepted: /nix/store/, 32 characters of Nix's base32 alphabet
// (0-9 and a-z without e, o, u, t), a dash, then a name of Nix's allowed
// characters that does not start with a dot. That rules out sub-paths
// ("/bin/..."), "..", spaces, newlines and option-looking values by
// construction; ".." anywhere is refused as well (Nix allows "a..b" in a
// name, but nothing Bento deploys needs it, and it is what a traversal looks like).
const STORE_PATH = /^(?!.*\.\.)\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*$/;

/** Nix limits a store path name to 211 characters: 11 + 32 + 1 + 211. */
export const MAX_STORE_PATH = 255;

export function isStorePath(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_STORE_PATH && STORE_PATH.test(s);
}

/** The same rule as a wire schema regex (the length bound is the schema's max). */
export const STORE_PATH_RE = STORE_PATH;
