# services.bento.client options -> the agent's JSON config (validated by
# validateClientConfig in client/config.ts). Pure: the unit test applies it
# to nixos/examples/client-settings.nix with a bare nix-instantiate and feeds
# the result to the real loader, so option names cannot drift from the code.
#
# `cfg` is the option set (or an example attrset with the same names).
# Unset (null) values are dropped so the agent applies its own defaults;
# `settings` is merged last, as the escape hatch for keys without an option.
cfg:
let
  pure = import ../../lib/pure.nix;
  get = n: cfg.${n} or null;
  endpoint = e: pure.filterNulls {
    url = e.url;
    proxy = e.proxy or null;
    proxyCommand = e.proxyCommand or null;
  };
  endpoints = cfg.endpoints or [ ];
  rebuildEnv = cfg.rebuildEnv or { };
  pullFrom = get "pullFrom";
  cache = get "cache";
in
pure.filterNulls {
  name = get "name";
  hub = get "hub";
  proxy = get "proxy";
  proxyCommand = get "proxyCommand";
  endpoints = if endpoints == [ ] then null else map endpoint endpoints;
  hubFingerprint = get "hubFingerprint";
  hubFingerprints = let l = cfg.hubFingerprints or [ ]; in if l == [ ] then null else l;
  endpointOrder = get "endpointOrder";
  identityFile = get "identityFile";
  stateDir = get "stateDir";
  flake = get "flake";
  configuration = get "configuration";
  rebuildCommand = get "rebuildCommand";
  rebuildEnv = if rebuildEnv == { } then null else rebuildEnv;
  allowForwardPorts = get "allowForwardPorts";
  connectTimeoutMs = get "connectTimeoutMs";
  backoff = get "backoff";
  rollback = get "rollback";
  rollbackTimeoutMs = get "rollbackTimeoutMs";
  configDir = get "configDir";
  autoApply = get "autoApply";
  autoApplyAction = get "autoApplyAction";
  pullIntervalMs = get "pullIntervalMs";
  pullJitterMs = get "pullJitterMs";
  logUpload = get "logUpload";
  flakeUpdateIntervalMs = get "flakeUpdateIntervalMs";
  flakeUpdateCommand = get "flakeUpdateCommand";
  pullFrom = if pullFrom == null then null else pure.filterNulls {
    url = pullFrom.url;
    user = pullFrom.user or null;
    hostFingerprint = pullFrom.hostFingerprint;
    proxy = pullFrom.proxy or null;
    proxyCommand = pullFrom.proxyCommand or null;
  };
  # publicKey is the module's (nix.settings), not the agent's.
  cache = if cache == null then null else pure.filterNulls { localPort = cache.localPort; service = cache.service or null; };
  secretsDir = get "secretsDir";
  rebootOnKernelChange = get "rebootOnKernelChange";
  rebootCommand = get "rebootCommand";
  rebootMethod = get "rebootMethod";
  restartOnChange = get "restartOnChange";
  # An executable (a path or a package) runs without arguments.
  postSwitchCommand = let c = get "postSwitchCommand"; in if c == null || builtins.isList c then c else [ "${toString c}" ];
  postSwitchTimeoutMs = get "postSwitchTimeoutMs";
  healthCommand = let c = get "healthCommand"; in if c == null || builtins.isList c then c else [ "${toString c}" ];
  healthTimeoutMs = get "healthTimeoutMs";
  healthIntervalMs = get "healthIntervalMs";
  machineId = get "machineId";
}
# localPage = null means "off" (absent means the default page), so it is
# rendered as given; its inner nulls mean "off" too.
// (if cfg ? localPage then { inherit (cfg) localPage; } else { })
// (cfg.settings or { })
