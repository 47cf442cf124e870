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
  { assertion = pure.isAbsolute dataDir && dataDir != "/";
    message = ''${o}.dataDir = "${toString dataDir}" must be an absolute directory (the fleet: hub.json, keys, registry, hosts/).''; }
  { assertion = hostKeyFile == null || pure.isAbsolute hostKeyFile;
    message = "${o}.hostKeyFile must be an absolute path string (read at start through a systemd credential) or null."; }
]
