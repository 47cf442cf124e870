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
}
