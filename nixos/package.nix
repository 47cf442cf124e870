# The Bento package: bento-hub and bento-client, built with buildNpmPackage
# from this repository (TypeScript compiled by `npm run build`, i.e. tsc).
#
# npmDepsHash lives in ./npm-deps-hash so updating it after a change to
# package-lock.json is a one-line, scriptable edit (see docs/nixos.md):
#   nix run nixpkgs#prefetch-npm-deps package-lock.json > nixos/npm-deps-hash
{ lib, buildNpmPackage, nodejs_20, python3 }:
let
  root = ../.;
  manifest = lib.importJSON (root + "/package.json");
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

  nodejs = nodejs_20;
  npmDepsHash = lib.fileContents ./npm-deps-hash;

  # ssh2 and its optional cpu-features try a native build (node-gyp); both
  # fall back to pure JS when it fails, python3 lets it succeed.
  nativeBuildInputs = [ python3 ];

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
    runHook postInstallCheck
  '';

  passthru.nodejs = nodejs_20;

  meta = {
    description = manifest.description;
    license = lib.licenses.mit;
    mainProgram = "bento-hub";
    platforms = lib.platforms.linux;
  };
}
