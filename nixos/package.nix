# The Bento package: bento-hub and bento-client, built with buildNpmPackage
# from this repository (TypeScript compiled by `npm run build`, i.e. tsc).
#
# Dependencies come from nixpkgs' importNpmLock: each package in
# package-lock.json is fetched on its own with fetchurl, checked against the
# lock's own "integrity" hash (./lib/npm-lock.nix adds the registry URL npm
# leaves out). There is no npmDepsHash: nothing to recompute after a change to
# the lock, and no placeholder hash that could be committed by mistake.
#
# ssh2's optional native parts are built in the sandbox: cpu-features and
# ssh2's own crypto binding, by their install scripts (node-gyp, with the
# headers of the same nodejs importNpmLock's hook configures, python3 from
# buildNpmPackage, the stdenv compiler). Both are optional for ssh2, which
# silently falls back to JavaScript without them; the install check makes
# their absence a build failure instead.
{ lib, buildNpmPackage, importNpmLock, nodejs }:
let
  root = ../.;
  manifest = lib.importJSON (root + "/package.json");
  packageLock = import ./lib/npm-lock.nix { inherit lib; } (lib.importJSON (root + "/package-lock.json"));
in
buildNpmPackage {
  pname = manifest.name;
  inherit (manifest) version;

  # Only what the build reads: edits to docs/, nixos/ or the tests do not
  # rebuild the package.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/package.json")
      (root + "/package-lock.json")
      (root + "/tsconfig.json")
      (root + "/common")
      (root + "/hub")
      (root + "/client")
    ];
  };

  # The nodejs importNpmLock's hooks are built with (nixpkgs' default, a
  # current LTS): the native addons must be compiled for the node that runs them.
  inherit nodejs;
  npmDeps = importNpmLock {
    package = manifest;
    inherit packageLock;
  };
  npmConfigHook = importNpmLock.npmConfigHook;

  # The default install (npm pack, honouring package.json "files" and "bin")
  # puts the tree in $out/lib/node_modules/bento-fleet and wraps each bin as
  # `node dist/.../main.js`. The compiled tests are not part of the product.
  postInstall = ''
    rm -rf $out/lib/node_modules/bento-fleet/dist/test
  '';

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    $out/bin/bento-hub --help >/dev/null
    $out/bin/bento-client --help >/dev/null
    # The native addons were built and load in this node (ssh2 would hide their absence).
    ${nodejs}/bin/node -e '
      const dir = process.argv[1] + "/node_modules/";
      require(dir + "cpu-features")();
      require(dir + "ssh2/lib/protocol/crypto/build/Release/sshcrypto.node");
    ' $out/lib/node_modules/bento-fleet
    runHook postInstallCheck
  '';

  passthru.nodejs = nodejs;

  meta = {
    description = manifest.description;
    license = lib.licenses.mit;
    mainProgram = "bento-hub";
    platforms = lib.platforms.linux;
  };
}
