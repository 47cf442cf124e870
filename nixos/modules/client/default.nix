# services.bento.client, split like nlewo/comin's module: options, the
# systemd units, and the rendered config with its assertions.
{
  imports = [ ./options.nix ./unit.nix ./config.nix ];
}
