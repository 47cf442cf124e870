# The client module's assertions, as a pure function of its options so the
# unit test can evaluate them without nixpkgs. They mirror the agent's own
# refusals (client/config.ts, client/net/endpoint.ts) but name the NixOS
# option to change, so a mistake fails `nixos-rebuild` instead of the unit.
cfg:
let
  pure = import ../../lib/pure.nix;
  o = "services.bento.client";
  get = n: cfg.${n} or null;
  endpoints = cfg.endpoints or [ ];
  # Every way out the agent will try: `hub` (with the top-level proxy) first.
  routes =
    (if get "hub" == null then [ ] else [ { where = "${o}.hub"; url = cfg.hub; proxy = get "proxy"; proxyCommand = get "proxyCommand"; } ])
    ++ builtins.genList (i: let e = builtins.elemAt endpoints i; in {
      where = "${o}.endpoints.${toString i}";
      url = e.url; proxy = e.proxy or null; proxyCommand = e.proxyCommand or null;
    }) (builtins.length endpoints);
  pullFrom = get "pullFrom";
  localPage = get "localPage";
  cache = get "cache";
  lpListen = if localPage == null then null else localPage.listen or null;
  lpHostPort = if lpListen == null then null else pure.parseHostPort lpListen;
  # pullFrom is reached like an endpoint (same proxy rules), ssh:// only.
  pullRoutes = if pullFrom == null then [ ] else [ {
    where = "${o}.pullFrom"; url = pullFrom.url or null; proxy = pullFrom.proxy or null; proxyCommand = pullFrom.proxyCommand or null;
  } ];
  argv = v: builtins.isList v && v != [ ] && builtins.all (a: builtins.isString a && a != "") v;
  scheme = u: let p = pure.parseUrl u; in if p == null then null else p.scheme;
  routeChecks = r:
    let
      u = pure.parseUrl r.url;
      onion = u != null && pure.isOnion u.host;
      proxyScheme = if r.proxy == null then null else scheme r.proxy;
    in [
      { assertion = u != null && builtins.elem u.scheme [ "ssh" "ws" "wss" ];
        message = ''${r.where}: "${toString r.url}" is not a hub URL; write ssh://HOST:2222, ws://HOST/bento or wss://HOST/bento.''; }
      { assertion = u == null || !u.hasUser;
        message = ''${r.where}: "${toString r.url}" carries credentials; remove them (the agent authenticates with identityFile).''; }
      { assertion = r.proxy == null || r.proxyCommand == null;
        message = "${r.where}: set proxy or proxyCommand, not both."; }
      { assertion = r.proxy == null || builtins.elem proxyScheme [ "socks5h" "socks5" "http" ];
        message = ''${r.where}: proxy "${toString r.proxy}" must be socks5h://HOST:PORT (Tor), socks5://HOST:PORT or http://[USER:PASS@]HOST:PORT.''; }
      { assertion = !onion || r.proxyCommand != null || (r.proxy != null && proxyScheme != "socks5");
        message = ''${r.where}: ${r.url} is a Tor onion address; set proxy = "socks5h://127.0.0.1:9050" (and services.tor.client.enable = true). socks5:// would resolve the name locally.''; }
    ];
in
[
  { assertion = pure.isHostName (get "name");
    message = ''${o}.name = "${toString (get "name")}" is not a DNS label (a-z, 0-9, inner hyphens, at most 63); set ${o}.name explicitly, e.g. "web1".''; }
  { assertion = (get "hubFingerprint" == null && (cfg.hubFingerprints or [ ]) != [ ]) || pure.isFingerprint (get "hubFingerprint");
    message = ''${o}.hubFingerprint must be the hub key's "SHA256:..." fingerprint (43 base64 characters after "SHA256:"); run `bento-hub fingerprint` on the hub and paste it (or list every hub's in ${o}.hubFingerprints).''; }
  { assertion = builtins.all pure.isFingerprint (cfg.hubFingerprints or [ ]);
    message = ''${o}.hubFingerprints must hold hub key fingerprints ("SHA256:...", one per hub key; `bento-hub fingerprint` on each hub).''; }
  { assertion = routes != [ ];
    message = ''Set ${o}.hub = "ssh://hub.example:2222"; or list ${o}.endpoints = [ { url = "..."; } ].''; }
  { assertion = get "hub" != null || (get "proxy" == null && get "proxyCommand" == null);
    message = "${o}.proxy and ${o}.proxyCommand apply to ${o}.hub, which is null; give proxy/proxyCommand inside each ${o}.endpoints entry instead."; }
  { assertion = get "flake" == null || get "configuration" == null;
    message = "Set ${o}.flake or ${o}.configuration, not both."; }
  { assertion = get "flake" == null || builtins.match ".*#.+" cfg.flake != null;
    message = ''${o}.flake = "${toString (get "flake")}" must be "PATH#ATTRIBUTE", e.g. "/etc/nixos#web1".''; }
  { assertion = get "rebuildCommand" == null || (builtins.isList cfg.rebuildCommand && cfg.rebuildCommand != [ ]);
    message = "${o}.rebuildCommand must be a non-empty argv list, e.g. [ \"/run/current-system/sw/bin/nixos-rebuild\" ]."; }
  { assertion = builtins.all (n: get n == null || pure.isAbsolute cfg.${n}) [ "identityFile" "stateDir" ];
    message = "${o}.identityFile and ${o}.stateDir must be absolute paths (strings, so no secret is copied into the Nix store)."; }
  { assertion = let b = get "backoff"; in b == null || (b.initialMs >= 10 && b.maxMs >= b.initialMs);
    message = "${o}.backoff: need initialMs >= 10 and maxMs >= initialMs."; }
  { assertion = let v = get "pullIntervalMs"; in v == null || v == 0 || v >= 100;
    message = "${o}.pullIntervalMs = ${toString (get "pullIntervalMs")}: use 0 (no agent pull) or at least 100 (e.g. 900000 for 15 minutes)."; }
  { assertion = builtins.all (n: get n == null || pure.isAbsolute cfg.${n}) [ "configDir" "secretsDir" ];
    message = ''${o}.configDir and ${o}.secretsDir must be absolute paths, e.g. "/var/lib/bento-client/config" and "/run/bento-secrets".''; }
  { assertion = builtins.all (n: get n == null || argv cfg.${n}) [ "rebootCommand" "flakeUpdateCommand" ];
    message = ''${o}.rebootCommand and ${o}.flakeUpdateCommand must be non-empty argv lists of non-empty strings, e.g. [ "systemctl" "reboot" ].''; }
  { assertion = pullFrom == null || (builtins.isString (pullFrom.url or null) && pure.hasPrefix "ssh://" pullFrom.url);
    message = ''${o}.pullFrom.url = "${toString (pullFrom.url or null)}" must be ssh://HOST[:PORT] of the sftp server, without credentials (the login user is pullFrom.user).''; }
  { assertion = pullFrom == null || pure.isFingerprint (pullFrom.hostFingerprint or null);
    message = ''${o}.pullFrom.hostFingerprint must be that server's host key fingerprint, "SHA256:..." (run `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there).''; }
  { assertion = pullFrom == null || (pullFrom.user or null) == null || builtins.match "[A-Za-z0-9._-]{1,64}" pullFrom.user != null;
    message = ''${o}.pullFrom.user = "${toString (pullFrom.user or null)}" is not a user name (A-Z, a-z, 0-9, ".", "_", "-"; null: the host name).''; }
  { assertion = lpListen == null || (lpHostPort != null && pure.isLoopback lpHostPort.host);
    message = ''${o}.localPage.listen = "${toString lpListen}" must be a loopback address like "127.0.0.1:51337" (the page is for this host only), or null for no TCP page.''; }
  { assertion = localPage == null || (localPage.socket or null) == null || pure.isAbsolute localPage.socket;
    message = ''${o}.localPage.socket must be an absolute path (e.g. "/run/bento-client/local.sock") or null.''; }
  { assertion = localPage == null || (localPage.socketGroup or null) == null || builtins.match "[A-Za-z_][A-Za-z0-9_.-]{0,31}" localPage.socketGroup != null;
    message = ''${o}.localPage.socketGroup = "${toString (localPage.socketGroup or null)}" must be a group name, e.g. "wheel", or null.''; }
  { assertion = cache == null || builtins.match "[a-z][a-z0-9-]{0,31}" (cache.service or "cache") != null;
    message = ''${o}.cache.service = "${toString (cache.service or null)}" must name a hub service (services.bento.hub.settings.services), lower-case like "cache".''; }
  { assertion = get "machineId" == null || builtins.match "[0-9a-f]{32}" cfg.machineId != null;
    message = ''${o}.machineId = "${toString (get "machineId")}" must be this host's machine id, 32 lower-case hex digits: run `cat /etc/machine-id` on the host and paste it (or null for no pin).''; }
  { assertion = get "postSwitchCommand" == null || !(builtins.isList cfg.postSwitchCommand) || argv cfg.postSwitchCommand;
    message = ''${o}.postSwitchCommand must be an executable (e.g. pkgs.writeShellScript "notify" "...") or a non-empty argv list of non-empty strings, or null.''; }
  { assertion = get "healthCommand" == null || !(builtins.isList cfg.healthCommand) || argv cfg.healthCommand;
    message = ''${o}.healthCommand must be an executable (e.g. pkgs.writeShellScript "healthy" "...") or a non-empty argv list of non-empty strings, or null.''; }
  { assertion = cache == null || (cache.publicKey or null) == null || builtins.match "[^:[:space:]]+:[A-Za-z0-9+/]+=*" cache.publicKey != null;
    message = ''${o}.cache.publicKey must be a Nix signing public key "NAME:BASE64" (e.g. the output of `nix key convert-secret-to-public`), or null.''; }
]
++ builtins.concatMap routeChecks (routes ++ pullRoutes)
