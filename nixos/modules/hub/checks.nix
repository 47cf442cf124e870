# The hub module's assertions, as a pure function of its options (testable
# without nixpkgs). They mirror validateHubConfig's refusals but name the
# NixOS option to change.
cfg:
let
  pure = import ../../lib/pure.nix;
  o = "services.bento.hub";
  s = cfg.settings or { };
  get = n: s.${n} or null;
  dataDir = cfg.dataDir or "/var/lib/bento";
  hostKeyFile = cfg.hostKeyFile or null;
  tls = get "tls";
  dashboard = get "dashboard";
  metrics = get "metrics";
  services = get "services";
  publish = get "publish";
  cluster = get "cluster";
  cl = n: if cluster == null then null else cluster.${n} or null;
  clusterAuths = builtins.length (builtins.filter (x: x != null) [ (cl "user") (cl "tokenFile") (cl "nkeySeedFile") (cl "credsFile") ]);
  # A web listener: HOST:PORT, and a token unless it is on loopback.
  webChecks = what: w: example:
    let
      listen = w.listen or example;
      hp = pure.parseHostPort listen;
      tokenFile = w.tokenFile or (if what == "dashboard" then "dashboard.token" else null);
    in [
      { assertion = hp != null;
        message = ''${o}.settings.${what}.listen = "${toString listen}" must be HOST:PORT, e.g. "${example}".''; }
      { assertion = hp == null || tokenFile != null || pure.isLoopback hp.host;
        message = ''${o}.settings.${what}.listen = "${toString listen}" is not loopback, so it needs authentication: set ${o}.settings.${what}.tokenFile (or listen on 127.0.0.1).''; }
      { assertion = tokenFile == null || (builtins.isString tokenFile && tokenFile != "");
        message = "${o}.settings.${what}.tokenFile must be a path (relative: inside dataDir) or null."; }
    ];
  # The limits as the hub will see them (unset = its default), for the rules
  # that tie two of them together (the same as the hub's loader, named here).
  limitsSet = let v = get "limits"; in if v == null then { } else pure.filterNulls v;
  lim = builtins.mapAttrs (n: l: limitsSet.${n} or l.default) (import ./limits.nix);
  notAbove = a: b: {
    assertion = lim.${a} <= lim.${b};
    message = "${o}.settings.limits.${a} (${toString lim.${a}}) must not exceed ${b} (${toString lim.${b}}); raise ${b} or lower ${a}.";
  };
  argv = v: builtins.isList v && v != [ ] && builtins.all (a: builtins.isString a && a != "") v;
in
[
  { assertion = get "listen" == null || pure.isHostPort s.listen;
    message = ''${o}.settings.listen = "${toString (get "listen")}" must be HOST:PORT, e.g. "0.0.0.0:2222" or "[::]:2222".''; }
  { assertion = get "wsListen" == null || pure.isHostPort s.wsListen;
    message = ''${o}.settings.wsListen = "${toString (get "wsListen")}" must be HOST:PORT (e.g. "127.0.0.1:8022" behind nginx) or null.''; }
  { assertion = get "wsPath" == null || (builtins.isString s.wsPath && pure.hasPrefix "/" s.wsPath);
    message = ''${o}.settings.wsPath must start with "/", e.g. "/bento".''; }
  { assertion = tls == null || (pure.isAbsolute (tls.cert or null) && pure.isAbsolute (tls.key or null));
    message = "${o}.settings.tls needs absolute cert and key paths (strings, so the key stays out of the Nix store), or null."; }
  { assertion = get "adminGroup" == null || (builtins.isString s.adminGroup && s.adminGroup != "");
    message = "${o}.settings.adminGroup must be a group name or null (admin socket for root and the hub user only)."; }
  { assertion = get "heartbeatMs" == null || (s.heartbeatMs >= 100 && s.heartbeatMs <= 3600000);
    message = "${o}.settings.heartbeatMs must be in 100..3600000."; }
  { assertion = get "jobHistory" == null || s.jobHistory >= 1;
    message = "${o}.settings.jobHistory must be at least 1."; }
  { assertion = (cfg.user or "bento") != "root" && (cfg.group or "bento") != "root";
    message = ''${o}.user and ${o}.group must not be root: the hub needs no privilege (a port below 1024 gets CAP_NET_BIND_SERVICE); keep the default "bento" or name another system account for the module to create.''; }
  { assertion = pure.isAbsolute dataDir && dataDir != "/";
    message = ''${o}.dataDir = "${toString dataDir}" must be an absolute directory (the fleet: hub.json, keys, registry, hosts/).''; }
  { assertion = hostKeyFile == null || pure.isAbsolute hostKeyFile;
    message = "${o}.hostKeyFile must be an absolute path string (read at start through a systemd credential) or null."; }
  { assertion = services == null || builtins.all (n: builtins.match "[a-z][a-z0-9-]{0,31}" n != null) (builtins.attrNames services);
    message = ''${o}.settings.services: names must be lower-case letters, digits and "-" (e.g. "cache"), got ${builtins.toJSON (builtins.attrNames (if services == null then { } else services))}.''; }
  { assertion = services == null || builtins.all (t: let hp = pure.parseHostPort t; in hp != null && hp.port >= 1) (builtins.attrValues services);
    message = ''${o}.settings.services: every target must be "HOST:PORT", e.g. { cache = "127.0.0.1:5000"; }.''; }
  { assertion = publish == null || builtins.all (k: (publish.${k} or null) == null || argv publish.${k}) [ "buildCommand" "flakeHostsCommand" ];
    message = ''${o}.settings.publish.buildCommand and .flakeHostsCommand must be non-empty argv lists of non-empty strings, e.g. [ "nixos-rebuild" ].''; }
  { assertion = dashboard == null || builtins.all (h: builtins.isString h && builtins.match "[][A-Za-z0-9.:-]{1,260}" h != null) (dashboard.allowedHosts or [ ]);
    message = ''${o}.settings.dashboard.allowedHosts must be Host header values like "hub.example.org:443".''; }
  { assertion = dashboard == null || (dashboard.tls or null) == null || (builtins.isString (dashboard.tls.cert or null) && builtins.isString (dashboard.tls.key or null));
    message = "${o}.settings.dashboard.tls needs cert and key paths, or null for plain HTTP."; }
  { assertion = cluster == null || (builtins.isList (cl "servers") && cl "servers" != [ ]);
    message = ''${o}.settings.cluster.servers must list the NATS servers, e.g. [ "nats://10.0.0.1:4222" "nats://10.0.0.2:4222" "nats://10.0.0.3:4222" ].''; }
  { assertion = cluster == null || pure.isHostName (cl "hubName");
    message = ''${o}.settings.cluster.hubName = "${toString (cl "hubName")}" must be a DNS label unique to this hub, e.g. "hub1".''; }
  # The hub's loader refuses it too (hub/publish/settings.ts CLUSTER_LOG_MAX_FILES): each host's log list is one NATS record of at most 1 MiB.
  { assertion = cluster == null || publish == null || (publish.logMaxFiles or null) == null || publish.logMaxFiles <= 3174;
    message = "${o}.settings.publish.logMaxFiles = ${toString (if publish == null then 0 else publish.logMaxFiles or 0)} is more than a cluster allows (3174: each host's list of logs is one NATS record of at most 1 MiB); lower it, or keep fewer larger logs.";  }
  { assertion = cluster == null || clusterAuths <= 1;
    message = "${o}.settings.cluster: give one way to authenticate to NATS: user + passwordFile, tokenFile, nkeySeedFile or credsFile."; }
  { assertion = cluster == null || ((cl "user") == null) == ((cl "passwordFile") == null);
    message = "${o}.settings.cluster.user and .passwordFile go together."; }
  { assertion = get "secretsDir" == null || (builtins.isString s.secretsDir && s.secretsDir != "");
    message = ''${o}.settings.secretsDir must be a directory path (relative: inside dataDir) or null.''; }
  (notAbove "bannerTimeoutMs" "handshakeTimeoutMs")
  (notAbove "earlyDropQueued" "maxQueued")
  (notAbove "penaltyMs" "penaltyMaxMs")
  (notAbove "jobOutputBytes" "hostOutputBytes")
  { assertion = lim.jobOutputTailBytes * 2 <= lim.jobOutputBytes;
    message = "${o}.settings.limits.jobOutputTailBytes (${toString lim.jobOutputTailBytes}) must be at most half of jobOutputBytes (${toString lim.jobOutputBytes}).";  }
  { assertion = builtins.all (c: builtins.isString c && builtins.match "[0-9a-fA-F:.]+(/[0-9]{1,3})?" c != null) (limitsSet.exempt or [ ]);
    message = ''${o}.settings.limits.exempt must list addresses or CIDRs, e.g. [ "10.1.0.0/16" "2001:db8::/48" ].''; }
]
++ (if dashboard == null then [ ] else webChecks "dashboard" dashboard "127.0.0.1:8080")
++ (if metrics == null then [ ] else webChecks "metrics" metrics "127.0.0.1:9180")
