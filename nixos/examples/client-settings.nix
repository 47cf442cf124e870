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

  # A server that converges from the published configuration: magic
  # rollback with a longer window, no automatic switch (pull, then wait for
  # a trigger), weekly flake-input updates, the hub's binary cache through
  # the tunnel, the local "upgrade now" socket for wheel, a reboot when the
  # kernel changes, a machine-id pin and a post-switch command.
  managed = {
    enable = true;
    name = "db2";
    hub = "wss://hub.example.org/bento";
    hubFingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
    flake = "/var/lib/bento-client/config#db2";
    rollback = true;
    rollbackTimeoutMs = 180000;
    configDir = "/var/lib/bento-client/config";
    autoApply = false;
    autoApplyAction = "boot";
    pullIntervalMs = 600000;
    pullJitterMs = 60000;
    logUpload = true;
    flakeUpdateIntervalMs = 604800000;
    flakeUpdateCommand = [ "nix" "--extra-experimental-features" "nix-command flakes" "flake" "update" ];
    localPage = { listen = null; socket = "/run/bento-client/local.sock"; socketGroup = "wheel"; metrics = false; };
    cache = { localPort = 5001; service = "cache"; publicKey = "hub.example.org-1:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30="; };
    secretsDir = "/run/bento-secrets";
    rebootOnKernelChange = true;
    rebootCommand = [ "/run/current-system/sw/bin/systemctl" "reboot" ];
    rebootMethod = "kexec";
    restartOnChange = [ "/etc/bento/client.json" "/etc/bento/package" ];
    # Pinned to this box: a configuration published for another machine is refused.
    machineId = "4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c";
    # Tell the fleet's log after every switch (BENTO_HOST, BENTO_OUTCOME, ...).
    postSwitchCommand = [ "/run/current-system/sw/bin/logger" "-t" "bento" "switched" ];
    postSwitchTimeoutMs = 10000;
    # Healthy only when every unit came up (bento-hub rollout waits for this; a failure rolls back).
    healthCommand = [ "/run/current-system/sw/bin/systemctl" "is-system-running" "--wait" ];
    healthTimeoutMs = 120000;
    healthIntervalMs = 5000;
  };

  # Migrating from upstream Bento: configurations still come from the old
  # sftp chroot (reached through Tor), the tunnel goes to the new hub; no
  # rollback, no local page.
  migrating = {
    enable = true;
    name = "nas";
    hub = "ssh://hub.example.org:2222";
    hubFingerprint = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
    rollback = false;
    pullFrom = {
      url = "ssh://bentooldxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion:22";
      user = "nas";
      hostFingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
      proxy = "socks5h://127.0.0.1:9050";
      proxyCommand = null;
    };
    localPage = null;
    cache = null;
  };

  # One of a cluster's hosts (docs/cluster.md): three hubs with their own
  # keys; the host starts at its own hub of the three and moves on to the
  # others in its own order when that one is down.
  cluster = {
    enable = true;
    name = "web2";
    endpoints = [
      { url = "ssh://hub1.example.org:2222"; }
      { url = "ssh://hub2.example.org:2222"; }
      { url = "ssh://hub3.example.org:2222"; }
    ];
    endpointOrder = "spread";
    hubFingerprints = [
      "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30"
      "SHA256:AxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30"
      "SHA256:BxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30"
    ];
    flake = "/var/lib/bento-client/config#web2";
  };
}
