# services.bento.hub, split like nlewo/comin's module: options, the systemd
# unit, and the rendered hub.json with users, firewall, Tor and assertions;
# sweep.nix: the optional timer of `bento-hub cluster sweep`; hardening.nix:
# the systemd sandbox both units share.
# `package` defaults to pkgs.bento-fleet (lib.mkPackageOption); the entry
# points set it: the flake's nixosModules.hub to the flake's own package,
# ./default.nix (a checkout) to a build of that checkout.
{
  imports = [ ./options.nix ./unit.nix ./config.nix ./sweep.nix ];
}
