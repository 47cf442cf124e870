# services.bento.hub from a checkout (without flakes): the module, with its
# package built from this same checkout unless an overlay provides
# pkgs.bento-fleet. The flake's nixosModules.hub imports ./module.nix instead
# and defaults the package to the flake's own build.
{ lib, pkgs, ... }:
{
  imports = [ ./module.nix ];
  services.bento.hub.package = lib.mkDefault (pkgs.bento-fleet or (pkgs.callPackage ../../package.nix { }));
}
