# Test-only stand-in for the few parts of nixpkgs' `pkgs` the Bento modules
# use, for evaluating them with the real module system where nixpkgs is not
# available. Packages are attribute sets that the module system and string
# interpolation treat as derivations (type = "derivation", outPath), with a
# fake store path derived from their name and contents; nothing is built.
# pkgs.formats.json has nixpkgs' real option type (built from the real lib),
# and its generate/runCommand/writeShellScript keep their inputs readable
# (json, buildCommand, text), so a test can check what would be built.
{ lib, system ? "x86_64-linux", withBento ? true }:
let
  drv = name: attrs:
    let hash = builtins.substring 0 32 (builtins.hashString "sha256" (builtins.toJSON [ name attrs ]));
    in attrs // {
      type = "derivation";
      inherit name;
      outPath = "${builtins.storeDir}/${hash}-${name}";
      drvPath = "${builtins.storeDir}/${hash}-${name}.drv";
    };
  pkg = name: drv name { pname = name; };
in
{
  inherit lib;
  stdenv.hostPlatform.system = system;

  # nixpkgs: pkgs/pkgs-lib/formats.nix, `json`.
  formats.json = { }: {
    type =
      let
        valueType = types.nullOr (types.oneOf [
          types.bool types.int types.float types.str types.path
          (types.attrsOf valueType) (types.listOf valueType)
        ]) // { description = "JSON value"; };
        types = lib.types;
      in
      valueType;
    generate = name: value: drv name { json = builtins.toJSON value; };
  };

  runCommand = name: env: buildCommand: drv name (env // { inherit buildCommand; });
  writeShellScript = name: text: drv name { inherit text; };

  coreutils = pkg "coreutils";
  util-linux = pkg "util-linux";
  openssh = pkg "openssh";
  git = pkg "git";
  kexec-tools = pkg "kexec-tools";
  nodejs = pkg "nodejs";
  nix = pkg "nix";
  systemd = pkg "systemd";
  nixos-rebuild = pkg "nixos-rebuild";

  callPackage = fn: _: throw "pkgs-stub: callPackage ${toString fn} (nixpkgs is not available here; give the package explicitly)";
} // lib.optionalAttrs withBento {
  # What the overlay (flake overlays.default) adds.
  bento-fleet = drv "bento-fleet-0.1.0" { pname = "bento-fleet"; passthru.nodejs = pkg "nodejs"; };
}
