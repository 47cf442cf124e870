# package-lock.json as nixpkgs' importNpmLock needs it: every package with
# the URL it is fetched from. npm leaves "resolved" out of the lock when it
# runs with omit-lockfile-registry-resolved (so it does on the machines this
# lock is maintained on); for a package from the npm registry that URL
# follows from its name and version. "integrity", kept as npm wrote it, is the
# hash fetchurl verifies the tarball against: there is no hash here to keep
# up to date by hand. Entries that have "resolved" (another registry, git,
# file:) and links are left as they are.
{ lib }:
lock:
let
  registry = "https://registry.npmjs.org";
  # "node_modules/@types/ssh2/node_modules/@types/node" -> "@types/node"
  nameOf = key: lib.last (lib.splitString "node_modules/" key);
  # "@types/node" 18.19.130 -> .../@types/node/-/node-18.19.130.tgz
  tarball = name: version: "${registry}/${name}/-/${lib.last (lib.splitString "/" name)}-${version}.tgz";
  fill = key: p:
    if key == "" || p ? resolved || (p.link or false) then p
    else if !(p ? version && p ? integrity) then
      throw "package-lock.json: ${key} has no version or integrity; run `npm install --package-lock-only` to complete the lock"
    else p // { resolved = tarball (p.name or (nameOf key)) p.version; };
in
lock // { packages = lib.mapAttrs fill lock.packages; }
