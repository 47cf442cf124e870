# services.bento.client: the agent unit and the fallback pull timer.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.bento.client;
  exe = "${cfg.package}/bin/bento-client";
  # What nixos-rebuild needs: nix itself, git for flakes, ssh for
  # substituters and ProxyCommands, systemctl for the activation; and
  # util-linux's flock, which locks stateDir for this agent (client/state-lock.ts).
  path = [ config.nix.package pkgs.git pkgs.openssh config.systemd.package pkgs.coreutils pkgs.util-linux ]
    ++ lib.optional (cfg.rebootMethod == "kexec") pkgs.kexec-tools
    ++ cfg.extraPackages;
  # Same environment as system.autoUpgrade: NIX_PATH for non-flake configs,
  # the system proxy for nix's own downloads.
  environment = config.nix.envVars
    // lib.optionalAttrs (config.environment.sessionVariables ? NIX_PATH) { inherit (config.environment.sessionVariables) NIX_PATH; }
    // { HOME = "/root"; }
    // config.networking.proxy.envVars;
  underVarLib = lib.hasPrefix "/var/lib/" cfg.stateDir;
  network = { wants = [ "network-online.target" ]; after = [ "network-online.target" ]; };
in
{
  config = lib.mkIf cfg.enable {
    systemd.services.bento-client = network // {
      description = "Bento agent: persistent tunnel to the fleet hub";
      wantedBy = [ "multi-user.target" ];
      inherit path environment;
      # The agent runs `nixos-rebuild switch` itself. If that switch restarted
      # or stopped this unit it would kill the job that is activating the new
      # system (and its report). Instead the agent restarts itself once idle
      # when its config or package changed (restartOnChange), and Restart=always
      # brings up the new one.
      restartIfChanged = false;
      stopIfChanged = false;
      serviceConfig = {
        # Runs as root and is not sandboxed: switching the system needs the
        # whole machine. The stable /etc path keeps the unit file unchanged
        # when only the settings change.
        ExecStart = "${exe} run --config /etc/bento/client.json --log-level ${cfg.logLevel}";
        Restart = "always";
        RestartSec = "5s";
        UMask = "0077";
        # /run/bento-client for localPage.socket (`bento-client upgrade`);
        # traversable when a socketGroup may use the socket.
        RuntimeDirectory = "bento-client";
        RuntimeDirectoryMode = if cfg.localPage != null && cfg.localPage.socketGroup != null then "0711" else "0700";
      } // lib.optionalAttrs underVarLib {
        StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
        StateDirectoryMode = "0700";
      };
    };

    systemd.tmpfiles.rules = lib.optional (!underVarLib) "d ${cfg.stateDir} 0700 root root -";

    # Fallback when the tunnel is down: fetch the published config over SFTP
    # and converge. Same reasons as above for not restarting it on a switch.
    systemd.services.bento-client-pull = lib.mkIf (cfg.pullInterval != null) (network // {
      description = "Bento fallback pull from the fleet hub";
      inherit path environment;
      restartIfChanged = false;
      stopIfChanged = false;
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${exe} pull --config /etc/bento/client.json";
        UMask = "0077";
      };
    });

    systemd.timers.bento-client-pull = lib.mkIf (cfg.pullInterval != null) {
      description = "Periodic Bento fallback pull";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "5min";
        OnUnitActiveSec = cfg.pullInterval;
        RandomizedDelaySec = cfg.pullRandomizedDelay;
      };
    };
  };
}
