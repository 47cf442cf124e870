# services.bento.client: typed options. Every option named like a key of the
# agent's JSON config maps 1:1 onto that key (see render.nix); the rest
# (enable, package, pullInterval, pullRandomizedDelay, extraPackages,
# checkConfig, logLevel) shape the systemd units; cache.publicKey sets
# nix.settings. The options around a switch (rollback, reboot, restart,
# post-switch command, machine-id pin) are in options-switch.nix.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types literalExpression;
  defaults = import ./defaults.nix;
  json = pkgs.formats.json { };
  nullOrStr = description: mkOption { type = types.nullOr types.str; default = null; inherit description; };
in
{
  options.services.bento.client = {
    enable = lib.mkEnableOption "the Bento agent, which keeps this host's tunnel to the fleet hub open and runs the rebuilds it pushes";

    package = lib.mkPackageOption pkgs "bento-fleet" {
      extraDescription = ''
        It provides bento-client. The flake's `nixosModules` set this to the
        flake's own package, and `nixos/modules` imported from a checkout to
        `pkgs.bento-fleet` when an overlay provides it, else to a build of
        that checkout; set it only to run another build.
      '';
    };

    name = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "Host name registered on the hub (`bento-hub add-host NAME`). A lower-case DNS label.";
    };

    hub = nullOrStr ''
      The hub, as ssh://HOST[:PORT] (default port 2222), ws://HOST[/PATH] or
      wss://HOST[/PATH]. Tried first; `proxy`/`proxyCommand` apply to it.
      Use `endpoints` to list fallbacks.
    '';
    proxy = nullOrStr ''
      Proxy for `hub`: socks5h://HOST:PORT (Tor; names resolved by the proxy),
      socks5://HOST:PORT or http://[USER:PASS@]HOST:PORT (HTTP CONNECT).
    '';
    proxyCommand = nullOrStr ''
      ProxyCommand for `hub`, with %h and %p, e.g.
      "''${pkgs.corkscrew}/bin/corkscrew proxy.example 3128 %h %p".
      Use an absolute path or add the tool to `extraPackages`.
    '';

    endpoints = mkOption {
      type = types.listOf (types.submodule {
        options = {
          url = mkOption { type = types.str; description = "Hub URL (ssh://, ws:// or wss://)."; };
          proxy = nullOrStr "Proxy for this endpoint (socks5h://, socks5:// or http://).";
          proxyCommand = nullOrStr "ProxyCommand for this endpoint (%h, %p).";
        };
      });
      default = [ ];
      example = literalExpression ''
        [ { url = "ssh://hub.example:2222"; }
          { url = "ssh://xxxx.onion:2222"; proxy = "socks5h://127.0.0.1:9050"; } ]
      '';
      description = "Further ways to the hub, tried in order after `hub`.";
    };

    hubFingerprint = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30";
      description = "The hub key fingerprint to pin (`bento-hub fingerprint`). Anything else is refused. Set this or hubFingerprints.";
    };

    hubFingerprints = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = ''
        Several hubs with their own keys (docs/cluster.md): every hub key
        fingerprint to accept, next to hubFingerprint. Removing one revokes
        that hub's key for this agent.
      '';
    };

    endpointOrder = mkOption {
      type = types.nullOr (types.enum [ "listed" "spread" ]);
      default = null;
      description = ''
        "listed" (the agent's default): try hub, then endpoints, in order.
        "spread": the endpoints are equivalent hubs of a cluster; each host
        tries them in its own stable order (a hash of its name), so hosts
        spread over the hubs and a dead hub's hosts over the survivors; a
        name with several addresses counts once per address.
      '';
    };

    identityFile = mkOption {
      type = types.str;
      default = defaults.identityFile;
      description = ''
        Private ed25519 key the agent logs in with (a string path: it is read
        at run time, never copied to the store). The default is the host's
        ssh host key, so enrolment is `bento-hub add-host NAME --key-file
        ssh_host_ed25519_key.pub`.
      '';
    };

    stateDir = mkOption {
      type = types.str;
      default = defaults.stateDir;
      description = "Agent state (outbox of unreported results, running job, pulled config). One agent per directory: the agent locks it, and a second one on the same directory exits with STATE_DIR_LOCKED.";
    };

    flake = nullOrStr ''Flake to rebuild from, "PATH#ATTRIBUTE" (passed as --flake).'';
    configuration = nullOrStr "configuration.nix to rebuild from (passed as -I nixos-config=...).";

    rebuildCommand = mkOption {
      type = types.listOf types.str;
      default = [ "${config.system.build.nixos-rebuild or pkgs.nixos-rebuild}/bin/nixos-rebuild" ];
      defaultText = literalExpression ''[ "''${config.system.build.nixos-rebuild}/bin/nixos-rebuild" ]'';
      description = "argv the action (switch, boot, ...) and the flake/configuration flags are appended to.";
    };

    rebuildEnv = mkOption {
      type = types.attrsOf types.str;
      default = { };
      description = "Extra environment for the rebuild command.";
    };

    allowForwardPorts = mkOption {
      type = types.listOf types.port;
      default = defaults.allowForwardPorts;
      description = "Local ports the hub may reach through the tunnel (`bento-hub proxy HOST PORT`).";
    };

    connectTimeoutMs = mkOption {
      type = types.ints.between 100 600000;
      default = defaults.connectTimeoutMs;
      description = "Time allowed for one connection attempt (carrier, proxy and SSH handshake).";
    };

    backoff = mkOption {
      type = types.submodule {
        options = {
          initialMs = mkOption { type = types.ints.between 10 86400000; default = defaults.backoff.initialMs; description = "First reconnect delay."; };
          maxMs = mkOption { type = types.ints.between 10 86400000; default = defaults.backoff.maxMs; description = "Cap of the exponential reconnect delay."; };
        };
      };
      default = { };
      description = "Reconnect backoff (exponential with full jitter).";
    };

    configDir = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/lib/bento-client/config";
      description = "Where the pulled (published) configuration appears, an atomically swapped symlink. null: STATEDIR/config.";
    };
    autoApply = mkOption {
      type = types.bool;
      default = defaults.autoApply;
      description = "Rebuild as soon as a changed configuration is pulled (false: wait for a trigger).";
    };
    autoApplyAction = mkOption {
      type = types.enum [ "switch" "boot" "test" "build" "dry-activate" ];
      default = defaults.autoApplyAction;
      description = "The action an automatic rebuild runs.";
    };
    pullIntervalMs = mkOption {
      type = types.ints.between 0 604800000;
      default = defaults.pullIntervalMs;
      description = ''
        Period of the agent's own fallback pull (inside `bento-client run`);
        0 turns it off. Independent of the systemd timer `pullInterval`.
      '';
    };
    pullJitterMs = mkOption {
      type = types.nullOr (types.ints.between 0 86400000);
      default = null;
      description = "Each pull period is lengthened by a random delay in [0, pullJitterMs]. null: pullIntervalMs / 5.";
    };
    logUpload = mkOption {
      type = types.bool;
      default = defaults.logUpload;
      description = "Upload each job's compressed log to the hub (its logs/ directory).";
    };
    flakeUpdateIntervalMs = mkOption {
      type = types.ints.between 0 31536000000;
      default = defaults.flakeUpdateIntervalMs;
      description = "Update the configuration's flake inputs this often (a changed flake.lock means a rebuild); 0: never.";
    };
    flakeUpdateCommand = mkOption {
      type = types.listOf types.str;
      default = defaults.flakeUpdateCommand;
      description = "argv run inside a copy of the configuration to update its flake inputs.";
    };
    pullFrom = mkOption {
      type = types.nullOr (types.submodule {
        options = {
          url = mkOption { type = types.str; example = "ssh://old-hub.example:22"; description = "ssh:// URL of the stock OpenSSH sftp server."; };
          user = nullOrStr "Login user there; null: the host name (upstream Bento's convention).";
          hostFingerprint = mkOption { type = types.str; description = ''That server's host key fingerprint, "SHA256:..." (`ssh-keygen -lf`).''; };
          proxy = nullOrStr "Proxy to that server (socks5h://, socks5:// or http://).";
          proxyCommand = nullOrStr "ProxyCommand to that server (%h, %p).";
        };
      });
      default = null;
      description = "Pull from a stock sftp server (upstream Bento's chroot) instead of the hub, to migrate from upstream Bento. null: the hub.";
    };

    localPage = mkOption {
      type = types.nullOr (types.submodule {
        options = {
          listen = mkOption {
            type = types.nullOr types.str;
            default = defaults.localPage.listen;
            description = "Loopback HOST:PORT of the \"upgrade now\" page (127.0.0.1, [::1] or localhost only); null: no TCP page.";
          };
          socket = mkOption {
            type = types.nullOr types.str;
            default = defaults.localPage.socket;
            description = "Unix socket for `bento-client upgrade` (the unit's RuntimeDirectory is /run/bento-client); null: none.";
          };
          socketGroup = mkOption {
            type = types.nullOr types.str;
            default = defaults.localPage.socketGroup;
            example = "wheel";
            description = "Group allowed on the socket (mode 0660); null: root only (0600).";
          };
          metrics = mkOption {
            type = types.bool;
            default = defaults.localPage.metrics;
            description = "Serve this agent's Prometheus metrics at /metrics on the page.";
          };
        };
      });
      default = { };
      description = "The host-local \"upgrade now\" page and its unix socket (docs/web.md); null turns both off.";
    };

    cache = mkOption {
      type = types.nullOr (types.submodule {
        options = {
          localPort = mkOption { type = types.port; example = 5001; description = "Port on 127.0.0.1 where the agent serves the hub's binary cache through the tunnel."; };
          service = mkOption { type = types.str; default = defaults.cacheService; description = "Name of the hub service (hub settings.services) the port forwards to."; };
          publicKey = nullOrStr ''
            The cache's signing public key ("NAME:BASE64"). When set, the module adds
            http://127.0.0.1:LOCALPORT to nix.settings.substituters and this key to
            nix.settings.trusted-public-keys. Not part of the agent's config.
          '';
        };
      });
      default = null;
      description = "The hub's binary cache, reached through the agent's tunnel (docs/cache-secrets-reboot.md); null: off.";
    };

    secretsDir = mkOption {
      type = types.str;
      default = defaults.secretsDir;
      description = "Where delivered secrets land (keep it on a tmpfs such as /run).";
    };
    settings = mkOption {
      type = json.type;
      default = { };
      description = "Extra keys merged last into the agent's JSON config, for settings without an option here.";
    };

    pullInterval = mkOption {
      type = types.nullOr types.str;
      default = defaults.pullInterval;
      description = ''
        Period of the fallback pull timer (bento-client-pull.timer, systemd
        time span). It converges the host from the hub's published
        configuration when the tunnel is down. null disables the timer.
      '';
    };
    pullRandomizedDelay = mkOption {
      type = types.str;
      default = defaults.pullRandomizedDelay;
      description = "RandomizedDelaySec of the pull timer, so a fleet does not pull in lockstep.";
    };

    extraPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ pkgs.corkscrew pkgs.netcat-openbsd ]";
      description = "Put on the agent's PATH (tools a proxyCommand or the rebuild needs).";
    };

    logLevel = mkOption {
      type = types.enum [ "trace" "debug" "info" "warn" "error" ];
      default = "info";
      description = "Agent log level (JSON lines in the journal).";
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Validate the rendered config with `bento-client check-config` at build time.";
    };

    configFile = mkOption {
      type = types.path;
      internal = true;
      readOnly = true;
      description = "The rendered agent config in the store (set by the module).";
    };
  };
}
