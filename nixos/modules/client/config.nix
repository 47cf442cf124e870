# services.bento.client: the rendered config, assertions and warnings.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.bento.client;
  pure = import ../../lib/pure.nix;
  rendered = (pkgs.formats.json { }).generate "bento-client.json" (import ./render.nix cfg);
  # Run the agent's own loader at build time: a config it would refuse fails
  # the system build rather than the unit after the switch. The host's key is
  # not visible inside a Nix build: the agent checks it when it starts.
  checked = pkgs.runCommand "bento-client.json" { } ''
    ${cfg.package}/bin/bento-client check-config --skip-identity --config ${rendered}
    cp ${rendered} $out
  '';
  proxies = lib.filter (p: p != null) ([ cfg.proxy ] ++ map (e: e.proxy) cfg.endpoints);
  usesLocalTor = lib.any (p: builtins.match "socks5h?://(127\\.0\\.0\\.1|localhost):9050.*" p != null) proxies;
in
{
  config = lib.mkIf cfg.enable {
    services.bento.client.configFile = if cfg.checkConfig then checked else rendered;

    # A stable path for admins: `bento-client check-config|pubkey --config /etc/bento/client.json`.
    environment.etc."bento/client.json".source = cfg.configFile;
    # Re-pointed by every switch that changes the package: the agent restarts itself when idle (restartOnChange).
    environment.etc."bento/package".source = cfg.package;
    environment.systemPackages = [ cfg.package ];
    # The pin travels inside every system built from this configuration
    # (SYSTEM/etc/bento/machine-id): the agent compares it with /etc/machine-id
    # before it activates that system (client/jobs/machine-id.ts).
    environment.etc."bento/machine-id" = lib.mkIf (cfg.machineId != null) { text = cfg.machineId; };

    assertions = import ./checks.nix cfg;

    # The hub's binary cache, served by the agent on loopback through its
    # tunnel. Nix skips the substituter while the tunnel is down.
    nix.settings = lib.mkIf (cfg.cache != null && cfg.cache.publicKey != null) {
      substituters = [ "http://127.0.0.1:${toString cfg.cache.localPort}" ];
      trusted-public-keys = [ cfg.cache.publicKey ];
    };

    warnings =
      lib.optional (cfg.identityFile == "/etc/ssh/ssh_host_ed25519_key" && !config.services.openssh.enable) ''
        services.bento.client.identityFile is the ssh host key, but services.openssh is disabled, so nothing
        generates /etc/ssh/ssh_host_ed25519_key. Enable services.openssh, create the key
        (ssh-keygen -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key), or point identityFile elsewhere.''
      ++ lib.optional (usesLocalTor && !config.services.tor.client.enable) ''
        services.bento.client uses the Tor SOCKS port 127.0.0.1:9050, but services.tor.client.enable is false;
        set services.tor.enable = true; services.tor.client.enable = true;''
      ++ lib.optional (cfg.cache != null && cfg.cache.publicKey == null) ''
        services.bento.client.cache is set but cache.publicKey is null, so the module does not add
        http://127.0.0.1:${toString cfg.cache.localPort} to nix.settings.substituters: set cache.publicKey to the
        hub cache's signing key ("NAME:BASE64"), or add the substituter and its key yourself.''
      ++ lib.optional (cfg.pullInterval == null) ''
        services.bento.client.pullInterval is null: with the tunnel down this host will not converge
        until it reconnects (no fallback pull).'';
  };
}
