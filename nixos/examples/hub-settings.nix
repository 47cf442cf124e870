# Example values of services.bento.hub, as the module would hold them
# (package and configFile left out). The unit test renders each `settings`
# with nixos/modules/hub/render.nix and feeds it to the hub's own loader.
{
  # Defaults: SSH on 0.0.0.0:2222, no WebSocket.
  minimal = {
    enable = true;
    settings = { };
  };

  # Everything: WebSocket behind nginx, an admin group, an onion service,
  # a pinned hub key.
  full = {
    enable = true;
    dataDir = "/var/lib/bento";
    user = "bento";
    group = "bento";
    settings = {
      listen = "[::]:2222";
      wsListen = "127.0.0.1:8022";
      wsPath = "/bento";
      tls = null;
      heartbeatMs = 20000;
      adminGroup = "wheel";
      jobHistory = 200;
      # No typed option: passed through the free-form settings, validated by
      # the hub's loader at build time (checkConfig).
      publish = { keepVersions = 5; buildJobs = 4; };
    };
    openFirewall = true;
    onion = { enable = true; port = 2222; };
    hostKeyFile = "/run/secrets/bento-hub-key";
    logLevel = "info";
    checkConfig = true;
  };

  # wss:// served by the hub itself on 443.
  direct-tls = {
    enable = true;
    settings = {
      listen = "0.0.0.0:2222";
      wsListen = "0.0.0.0:443";
      tls = { cert = "/var/lib/acme/hub.example.org/fullchain.pem"; key = "/var/lib/acme/hub.example.org/key.pem"; };
    };
    openFirewall = true;
  };
}
