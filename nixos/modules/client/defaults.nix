# Defaults of the client module, kept in one pure file so the unit test can
# compare them with what validateClientConfig (client/config.ts) fills in.
{
  identityFile = "/etc/ssh/ssh_host_ed25519_key";
  stateDir = "/var/lib/bento-client";
  allowForwardPorts = [ 22 ];
  connectTimeoutMs = 20000;
  backoff = { initialMs = 1000; maxMs = 60000; };
  currentSystem = "/run/current-system";
  systemProfile = "/nix/var/nix/profiles/system";
  rollback = true;
  rollbackTimeoutMs = 90000;
  autoApply = true;
  autoApplyAction = "switch";
  pullIntervalMs = 900000;
  logUpload = true;
  flakeUpdateIntervalMs = 0;
  flakeUpdateCommand = [ "nix" "--extra-experimental-features" "nix-command flakes" "flake" "update" ];
  localPage = { listen = "127.0.0.1:51337"; socket = "/run/bento-client/local.sock"; socketGroup = null; metrics = true; };
  cacheService = "cache";
  secretsDir = "/run/bento-secrets";
  rebootOnKernelChange = false;
  rebootCommand = [ "systemctl" "reboot" ];
  rebootMethod = "reboot";
  # The module's own paths: the rendered config and a link to the package (config.nix).
  restartOnChange = [ "/etc/bento/client.json" "/etc/bento/package" ];
  postSwitchTimeoutMs = 60000;
  healthTimeoutMs = 60000;
  healthIntervalMs = 2000;
  pullInterval = "15min";
  pullRandomizedDelay = "5min";
}
