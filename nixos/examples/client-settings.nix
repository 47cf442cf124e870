# Example values of services.bento.client, as the module would hold them
# (package and configFile left out). The unit test renders each one with
# nixos/modules/client/render.nix and feeds it to the agent's own loader,
# and checks them against the option tree, so keep every option in use
# somewhere here. docs/nixos.md shows the same settings as NixOS config.
{
  # The common case: direct SSH to the hub, flake config, defaults elsewhere.
  direct = {
    enable = true;
    name = "web1";
    hub = "ssh://hub.example.org:2222";
    hubFingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
    flake = "/var/lib/bento-client/config#web1";
  };

  # A laptop that roams: the hub over SSH first, then WebSocket through the
  # office HTTP proxy, then a corkscrew ProxyCommand, then the onion service
  # through the local Tor SOCKS port (socks5h: the proxy resolves the name).
  roaming = {
    enable = true;
    name = "laptop-7";
    hub = "ssh://hub.example.org:2222";
    proxy = null;
    proxyCommand = null;
    endpoints = [
      { url = "wss://hub.example.org/bento"; proxy = "http://proxy.corp.example:3128"; }
      { url = "ssh://hub.example.org:443"; proxyCommand = "/run/current-system/sw/bin/corkscrew proxy.corp.example 3128 %h %p"; }
      { url = "ssh://bentohubxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion:2222"; proxy = "socks5h://127.0.0.1:9050"; }
    ];
    hubFingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
    identityFile = "/etc/ssh/ssh_host_ed25519_key";
    stateDir = "/var/lib/bento-client";
    flake = null;
    configuration = "/var/lib/bento-client/config/configuration.nix";
    rebuildCommand = [ "/run/current-system/sw/bin/nixos-rebuild" ];
    rebuildEnv = { NIX_CONFIG = "connect-timeout = 5"; };
    allowForwardPorts = [ 22 9100 ];
    connectTimeoutMs = 30000;
    backoff = { initialMs = 2000; maxMs = 300000; };
    settings = { };
    pullInterval = "1h";
    pullRandomizedDelay = "10min";
    extraPackages = [ ];
    logLevel = "debug";
    checkConfig = true;
  };

  # Only reachable through Tor: no `hub`, a single onion endpoint, and an
  # agent setting passed through the escape hatch.
  tor-only = {
    enable = true;
    name = "kiosk-3";
    endpoints = [
      { url = "wss://bentohubxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/bento"; proxy = "socks5h://127.0.0.1:9050"; proxyCommand = null; }
    ];
    hubFingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
    settings = { systemProfile = "/nix/var/nix/profiles/system"; };
  };
}
