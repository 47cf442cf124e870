# services.bento.hub: typed options. `settings` maps 1:1 onto hub.json
# (render.nix) and, like hub.json itself, has no free-form part: a key the
# hub does not know (a typo such as `lisen`) is an evaluation error. The
# rest shape the unit, the user, the firewall and Tor.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types literalExpression;
  defaults = import ./defaults.nix;
  d = defaults.settings;
  p = defaults.publish;
  nullOrStr = description: mkOption { type = types.nullOr types.str; default = null; inherit description; };
in
{
  options.services.bento.hub = {
    enable = lib.mkEnableOption "the Bento hub, which holds every agent's SSH tunnel and pushes rebuilds through it";

    package = lib.mkPackageOption pkgs "bento-fleet" {
      extraDescription = ''
        It provides bento-hub. The flake's `nixosModules` set this to the
        flake's own package, and `nixos/modules` imported from a checkout to
        `pkgs.bento-fleet` when an overlay provides it, else to a build of
        that checkout; set it only to run another build.
      '';
    };

    dataDir = mkOption {
      type = types.str;
      default = defaults.dataDir;
      description = ''
        The fleet directory (`bento-hub --dir`, $BENTO_DIR): hub.json, the hub
        key, registry.json, hosts/, state/ and the admin socket hub.sock.
        Created and initialized (`bento-hub init`) on first start.
      '';
    };

    user = mkOption {
      type = types.str;
      default = defaults.user;
      description = "System user the hub runs as. The module creates it (a system user in `group`, home `dataDir`), whatever its name.";
    };
    group = mkOption {
      type = types.str;
      default = defaults.group;
      description = "Primary group of the hub user. The module creates it, whatever its name.";
    };

    settings = mkOption {
      default = { };
      description = ''
        hub.json. Installed into dataDir at every start, so edits made by hand
        there are replaced. Every key the hub reads has an option here; any
        other key is refused at evaluation time, as the hub would refuse it.
      '';
      type = types.submodule {
        options = {
          listen = mkOption { type = types.str; default = d.listen; description = "Agents' SSH listen address, HOST:PORT."; };
          wsListen = mkOption {
            type = types.nullOr types.str;
            default = d.wsListen;
            example = "127.0.0.1:8022";
            description = "WebSocket listen address, HOST:PORT (SSH in binary frames; put nginx in front for wss://), or null.";
          };
          wsPath = mkOption { type = types.str; default = d.wsPath; description = "HTTP path of the WebSocket endpoint."; };
          tls = mkOption {
            type = types.nullOr (types.submodule {
              options = {
                cert = mkOption { type = types.str; description = "PEM certificate chain path."; };
                key = mkOption { type = types.str; description = "PEM private key path (readable by the hub user)."; };
              };
            });
            default = d.tls;
            description = "TLS for the WebSocket listener (wss:// without a reverse proxy), or null.";
          };
          heartbeatMs = mkOption {
            type = types.ints.between 100 3600000;
            default = d.heartbeatMs;
            description = "Heartbeat period told to agents; a peer silent for 2.5 periods is dead.";
          };
          adminGroup = mkOption {
            type = types.nullOr types.str;
            default = d.adminGroup;
            example = "wheel";
            description = "Group allowed on the admin socket (mode 0660); null: root and the hub user only (0600).";
          };
          jobHistory = mkOption { type = types.ints.positive; default = d.jobHistory; description = "Finished jobs kept per host."; };

          publish = mkOption {
            type = types.nullOr (types.submodule {
              options = {
                buildCommand = mkOption { type = types.listOf types.str; default = p.buildCommand; description = "argv `bento-hub build`/`deploy` append the action (build, dry-build) and the config flags to."; };
                buildEnv = mkOption { type = types.attrsOf types.str; default = p.buildEnv; description = "Extra environment for the build command."; };
                buildJobs = mkOption {
                  type = types.nullOr (types.ints.between 1 256);
                  default = null;
                  description = "Hosts built at once. null: the hub's CPU count, at most 8.";
                };
                buildTimeoutMs = mkOption { type = types.ints.between 1000 604800000; default = p.buildTimeoutMs; description = "Time one host's build may take."; };
                flakeHostsCommand = mkOption {
                  type = types.listOf types.str;
                  default = p.flakeHostsCommand;
                  description = ''Lists the hosts a flake defines ("{dir}" is replaced by the flake directory); output in `nix flake show --json` format or a JSON array of names.'';
                };
                keepVersions = mkOption { type = types.ints.between 1 1000; default = p.keepVersions; description = "Published versions kept per host (the current one included)."; };
                logQuotaBytes = mkOption { type = types.ints.between 1024 1099511627776; default = p.logQuotaBytes; description = "Bytes of uploaded logs a host may keep in its jail; the oldest are pruned first."; };
                logMaxFiles = mkOption { type = types.ints.between 1 1000000; default = p.logMaxFiles; description = "Uploaded log files a host may keep. With settings.cluster at most 3174 (each host's log list is one NATS record; the hub refuses more)."; };
                copyTo = mkOption {
                  type = types.nullOr types.str;
                  default = p.copyTo;
                  example = "file:///var/cache/bento?secret-key=/run/secrets/bento-cache.sk";
                  description = ''
                    Nix store URL every successful build is copied to (`nix copy --to`): the hub's
                    binary cache for `bento-hub trigger --prebuilt`, served to agents as the
                    "cache" service. null: no copy (serve the hub's own store with harmonia instead).
                  '';
                };
              };
            });
            default = null;
            description = "How `bento-hub build`/`deploy` run Nix, and the per-host jail's limits. null: all defaults.";
          };
          dashboard = mkOption {
            type = types.nullOr (types.submodule {
              options = {
                listen = mkOption { type = types.str; default = defaults.dashboard.listen; description = "HOST:PORT of the web dashboard (keep it on loopback behind a reverse proxy)."; };
                tokenFile = mkOption {
                  type = types.nullOr types.str;
                  default = defaults.dashboard.tokenFile;
                  description = ''
                    Token file (relative: inside dataDir), created with a random
                    token when missing. null: no authentication, allowed on a
                    loopback listen address only.
                  '';
                };
                allowedHosts = mkOption {
                  type = types.listOf types.str;
                  default = defaults.dashboard.allowedHosts;
                  example = [ "hub.example.org" "hub.example.org:443" ];
                  description = "Extra Host header values accepted (a reverse proxy's name); loopback names always pass.";
                };
                tls = mkOption {
                  type = types.nullOr (types.submodule {
                    options = {
                      cert = mkOption { type = types.str; description = "PEM certificate chain path."; };
                      key = mkOption { type = types.str; description = "PEM private key path (readable by the hub user)."; };
                    };
                  });
                  default = defaults.dashboard.tls;
                  description = "Serve the dashboard over HTTPS with this certificate; null: plain HTTP.";
                };
              };
            });
            default = null;
            description = "The web dashboard (docs/web.md); null: off.";
          };
          metrics = mkOption {
            type = types.nullOr (types.submodule {
              options = {
                listen = mkOption { type = types.str; default = defaults.metrics.listen; description = "HOST:PORT of the Prometheus endpoint (GET /metrics)."; };
                tokenFile = mkOption {
                  type = types.nullOr types.str;
                  default = defaults.metrics.tokenFile;
                  description = "Bearer token file (Prometheus: authorization.credentials_file); required when listen is not loopback.";
                };
              };
            });
            default = null;
            description = "The hub's Prometheus endpoint; null: off.";
          };
          services = mkOption {
            type = types.nullOr (types.attrsOf types.str);
            default = null;
            example = { cache = "127.0.0.1:5000"; };
            description = ''
              Hub services agents may reach through their own tunnel, NAME ->
              "HOST:PORT" (e.g. a nix-serve/harmonia binary cache for the
              agents' services.bento.client.cache). null: none.
            '';
          };
          secretsDir = mkOption {
            type = types.nullOr types.str;
            default = null;
            description = "Where host secrets live, DIR/NAME/ (relative: inside dataDir). null: hosts/NAME/secrets/.";
          };
          limits = import ./options-limits.nix { inherit lib; };
          cluster = mkOption {
            type = types.nullOr (types.submodule {
              options = {
                servers = mkOption {
                  type = types.listOf types.str;
                  example = [ "nats://10.0.0.1:4222" "nats://10.0.0.2:4222" "nats://10.0.0.3:4222" ];
                  description = "NATS servers (nats://, tls:// or HOST:PORT); list every server of the JetStream cluster.";
                };
                hubName = mkOption {
                  type = types.str;
                  example = "hub1";
                  description = "This hub's name in the cluster (a DNS label, unique per hub): `list` shows it in the HUB column.";
                };
                agentUrl = nullOrStr "How agents reach this hub (ssh://HOST:PORT, ws:// or wss://): every hub's welcome lists the live hubs' URLs, so an agent can say which ones its config lacks.";
                user = nullOrStr "NATS user (with passwordFile).";
                passwordFile = nullOrStr "File holding the NATS user's password (read at start; keep it out of the store).";
                tokenFile = nullOrStr "File holding a NATS token (read at start).";
                nkeySeedFile = nullOrStr "File holding this hub's nkey seed (SU...).";
                credsFile = nullOrStr "A .creds file (JWT + seed) for operator-mode NATS.";
                tls = mkOption {
                  type = types.nullOr (types.submodule {
                    options = {
                      caFile = nullOrStr "CA bundle that signed the NATS servers' certificates.";
                      certFile = nullOrStr "Client certificate (with keyFile), for servers that verify clients.";
                      keyFile = nullOrStr "Client key (with certFile).";
                    };
                  });
                  default = null;
                  description = "TLS to NATS (servers given by DNS name); null: as the server URLs say.";
                };
                prefix = nullOrStr "First part of every bucket, stream and subject name; default \"bento\" (one per fleet on a shared NATS).";
                replicas = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Copies JetStream keeps of every bucket and stream; default 3."; };
                livenessMs = mkOption { type = types.nullOr types.ints.positive; default = null; description = "How often this hub writes its heartbeat; it is dead to the others after 6 periods. Default 2000."; };
                writeTimeoutMs = mkOption { type = types.nullOr types.ints.positive; default = null; description = "A write NATS has not acknowledged by then fails (and is retried); default 10000."; };
                outputMaxBytes = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Size limit of the job output stream (keep it below the servers' max_file); default 1 GiB."; };
              };
            });
            default = null;
            example = literalExpression ''
              { servers = [ "nats://10.0.0.1:4222" "nats://10.0.0.2:4222" "nats://10.0.0.3:4222" ];
                hubName = "hub1"; user = "bento"; passwordFile = "/run/secrets/nats-bento"; }
            '';
            description = ''
              One of several hubs sharing their state on NATS JetStream
              (docs/cluster.md: every hub takes any agent, a trigger at any hub
              reaches the host). null: a single hub with its state in dataDir.
            '';
          };
        };
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the TCP ports of settings.listen and settings.wsListen in
        networking.firewall, except those listening on a loopback address
        (127.0.0.0/8, ::1, localhost), which nothing outside can reach anyway.
      '';
    };

    onion = {
      enable = lib.mkEnableOption "a Tor v3 onion service for the agents' SSH port (services.tor.relay.onionServices.bento)";
      port = mkOption {
        type = types.nullOr types.port;
        default = null;
        description = "Port on the onion address; null: the port of settings.listen.";
      };
    };

    hostKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/bento-hub-key";
      description = ''
        OpenSSH ed25519 private key to install as the hub key at every start
        (through a systemd credential), so the fingerprint agents pin is known
        before the first boot and survives a reinstall. null: `bento-hub init`
        generates one on first start.
      '';
    };

    logLevel = mkOption {
      type = types.enum [ "trace" "debug" "info" "warn" "error" ];
      default = "info";
      description = "Hub log level (JSON lines in the journal).";
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Validate the rendered hub.json with the hub's own loader at build time.";
    };

    configFile = mkOption {
      type = types.path;
      internal = true;
      readOnly = true;
      description = "The rendered hub.json in the store (set by the module).";
    };
  };
}
