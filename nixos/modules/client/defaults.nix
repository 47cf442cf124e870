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
  pullInterval = "15min";
  pullRandomizedDelay = "5min";
}
