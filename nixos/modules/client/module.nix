# services.bento.client, split like nlewo/comin's module: options, the systemd
# units, and the rendered config with its assertions.
# `package` defaults to pkgs.bento-fleet (lib.mkPackageOption); the entry
# points set it: the flake's nixosModules.client to the flake's own package,
# ./default.nix (a checkout) to a build of that checkout.
{
  imports = [ ./options.nix ./options-switch.nix ./unit.nix ./config.nix ];
}
