# Defaults of the hub module, kept in one pure file so the unit test can
# compare them with DEFAULT_HUB_CONFIG in hub/fleet/hub-config.ts: the module
# and the daemon must agree on what "not set" means.
{
  dataDir = "/var/lib/bento";
  user = "bento";
  group = "bento";
  settings = {
    listen = "0.0.0.0:2222";
    wsListen = null;
    wsPath = "/bento";
    tls = null;
    heartbeatMs = 25000;
    adminGroup = null;
    jobHistory = 50;
  };

  # Defaults of hub.json's optional sections (absent = these), compared with
  # DEFAULT_PUBLISH_SETTINGS and hub/web/settings.ts. publish.buildJobs has
  # none here: the hub derives it from the CPU count.
  publish = {
    buildCommand = [ "nixos-rebuild" ];
    buildEnv = { };
    buildTimeoutMs = 3600000;
    flakeHostsCommand = [ "nix" "--extra-experimental-features" "nix-command flakes" "flake" "show" "--json" "path:{dir}" ];
    keepVersions = 3;
    logQuotaBytes = 67108864;
    logMaxFiles = 500;
    copyTo = null;
  };
  dashboard = { listen = "127.0.0.1:8080"; tokenFile = "dashboard.token"; allowedHosts = [ ]; tls = null; };
  metrics = { listen = "127.0.0.1:9180"; tokenFile = null; };
}
