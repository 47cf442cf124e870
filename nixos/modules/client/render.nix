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
in
pure.filterNulls {
  name = get "name";
  hub = get "hub";
  proxy = get "proxy";
  proxyCommand = get "proxyCommand";
  endpoints = if endpoints == [ ] then null else map endpoint endpoints;
  hubFingerprint = get "hubFingerprint";
  identityFile = get "identityFile";
  stateDir = get "stateDir";
  flake = get "flake";
  configuration = get "configuration";
  rebuildCommand = get "rebuildCommand";
  rebuildEnv = if rebuildEnv == { } then null else rebuildEnv;
  allowForwardPorts = get "allowForwardPorts";
  connectTimeoutMs = get "connectTimeoutMs";
  backoff = get "backoff";
}
// (cfg.settings or { })
