# services.bento.hub, split like nlewo/comin's module: options, the systemd
# unit, and the rendered hub.json with users, firewall, Tor and assertions.
{
  imports = [ ./options.nix ./unit.nix ./config.nix ];
}
