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
  # a pinned hub key, build settings, dashboard, metrics, a cache service.
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
      publish = {
        buildCommand = [ "/run/current-system/sw/bin/nixos-rebuild" ];
        buildEnv = { NIX_CONFIG = "max-jobs = 2"; };
        buildJobs = 4;
        buildTimeoutMs = 7200000;
        flakeHostsCommand = [ "nix" "--extra-experimental-features" "nix-command flakes" "flake" "show" "--json" "path:{dir}" ];
        keepVersions = 5;
        logQuotaBytes = 134217728;
        logMaxFiles = 1000;
        # Every build also lands in a signed static cache that nginx serves on 127.0.0.1:5000.
        copyTo = "file:///var/cache/bento?secret-key=/run/secrets/bento-cache.sk";
      };
      # The dashboard behind nginx (hub.example.org/ -> 127.0.0.1:8080), a
      # loopback Prometheus endpoint, and the fleet's binary cache (e.g.
      # services.harmonia on 127.0.0.1:5000) offered to the agents.
      dashboard = { listen = "127.0.0.1:8080"; tokenFile = "dashboard.token"; allowedHosts = [ "hub.example.org" "hub.example.org:443" ]; tls = null; };
      metrics = { listen = "127.0.0.1:9180"; tokenFile = null; };
      services = { cache = "127.0.0.1:5000"; };
      secretsDir = "secrets";
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
      # The dashboard on its own HTTPS port, token required off loopback;
      # metrics for a remote Prometheus with a bearer token.
      dashboard = {
        listen = "0.0.0.0:8443";
        tokenFile = "/run/secrets/bento-dashboard-token";
        allowedHosts = [ "hub.example.org:8443" ];
        tls = { cert = "/var/lib/acme/hub.example.org/fullchain.pem"; key = "/var/lib/acme/hub.example.org/key.pem"; };
      };
      metrics = { listen = "0.0.0.0:9180"; tokenFile = "/run/secrets/bento-metrics-token"; };
    };
    openFirewall = true;
  };

  # One hub of three sharing their state on a 3-node NATS JetStream cluster
  # (docs/cluster.md); the password comes from a secret at start.
  cluster-member = {
    enable = true;
    settings = {
      listen = "0.0.0.0:2222";
      cluster = {
        servers = [ "nats://nats1.example.org:4222" "nats://nats2.example.org:4222" "nats://nats3.example.org:4222" ];
        hubName = "hub1";
        agentUrl = "ssh://hub1.example.org:2222";
        user = "bento";
        passwordFile = "/run/secrets/nats-bento";
        tokenFile = null;
        nkeySeedFile = null;
        credsFile = null;
        tls = { caFile = "/etc/nats/ca.pem"; certFile = null; keyFile = null; };
        prefix = "bento";
        replicas = 3;
        livenessMs = 2000;
        writeTimeoutMs = 10000;
        outputMaxBytes = 1073741824;
      };
    };
    openFirewall = true;
    # Weekly: remove configuration objects no record keeps (a deploy killed halfway).
    clusterSweep = { enable = true; onCalendar = "Sun 03:00"; minAge = "6h"; };
  };

  # Every limit spelled out (docs/security.md "Limits"): the defaults, but more
  # room per source (hosts behind a NAT that reconnect together), fewer
  # handshakes at once on a small machine, bigger build logs, and a
  # reverse proxy's address exempted.
  limits-all = {
    enable = true;
    settings.limits = {
      adoptOpenPerHost = 8;
      adoptPerWindow = 512;
      adoptWindowMs = 3600000;
      bannerTimeoutMs = 5000;
      channelsPerConnection = 64;
      connectionsPerHost = 4;
      earlyDropPercent = 30;
      earlyDropQueued = 512;
      followerBufferBytes = 4194304;
      forwardsPerSession = 16;
      handshakeSlotMs = 2000;
      handshakeTimeoutMs = 10000;
      helloTimeoutMs = 30000;
      hostOutputBytes = 268435456;
      jobOutputBytes = 33554432;
      jobOutputTailBytes = 1048576;
      maxHandshakes = 32;
      maxQueued = 1024;
      maxUnauthenticated = 4096;
      penaltyFailures = 10;
      penaltyMaxMs = 300000;
      penaltyMs = 5000;
      penaltyWindowMs = 60000;
      perSourceUnauthenticated = 64;
      sessionBurstBytes = 4194304;
      sessionBytesPerSecond = 4194304;
      sessionOutboundBytes = 8388608;
      sessionOverrunBytes = 8388608;
      sessionQueuedBytes = 1048576;
      sessionQueuedMessages = 64;
      exempt = [ "10.1.0.5/32" "2001:db8::/64" ];
    };
  };
}
