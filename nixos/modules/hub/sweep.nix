# services.bento.hub.clusterSweep: `bento-hub cluster sweep` on a timer, for a
# hub of a cluster. It removes configuration trees and uploaded logs no record
# keeps (a hub killed between storing the object and its record, a failed
# delete; docs/cluster.md, "Open points"), never one younger than minAge or
# one the stream leader's record keeps, and purges the KV buckets' deletion
# markers older than minAge. One hub of the cluster is enough; on several
# the sweeps only find less to do.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.bento.hub;
  s = cfg.clusterSweep;
in
{
  options.services.bento.hub.clusterSweep = {
    enable = lib.mkEnableOption "a periodic `bento-hub cluster sweep` (needs settings.cluster)";
    onCalendar = mkOption {
      type = types.str;
      default = "daily";
      example = "Sun 03:00";
      description = "When the sweep runs (systemd.time OnCalendar; missed runs are made up after a boot).";
    };
    minAge = mkOption {
      type = types.strMatching "[0-9]{1,7}[smh]?";
      default = "1h";
      example = "6h";
      description = "Objects and deletion markers younger than this stay (`--min-age`: 90s, 10m, 2h; at least 1s, at most 7 days): a writer may be between storing an object and its record, and a hub's watch may not have passed a marker yet.";
    };
  };

  config = lib.mkIf (cfg.enable && s.enable) {
    assertions = [{
      assertion = cfg.settings.cluster != null;
      message = "services.bento.hub.clusterSweep.enable needs services.bento.hub.settings.cluster: a single hub keeps its configurations as files in dataDir and drops old ones itself.";
    }];

    systemd.services.bento-hub-sweep = {
      description = "Bento: remove configuration trees and logs no record keeps, purge old deletion markers";
      after = [ "network-online.target" "bento-hub.service" ];
      wants = [ "network-online.target" ];
      environment.BENTO_DIR = cfg.dataDir;
      # Not restarted by a switch: a oneshot started by its timer.
      restartIfChanged = false;
      serviceConfig = {
        Type = "oneshot";
        User = cfg.user;
        Group = cfg.group;
        ExecStart = "${cfg.package}/bin/bento-hub cluster sweep --dir ${lib.escapeShellArg cfg.dataDir} --min-age ${s.minAge}";
        # It reads hub.json and the NATS secrets it names, and talks to NATS; it writes nothing here.
        UMask = "0077";
      } // import ./hardening.nix // {
        CapabilityBoundingSet = [ "" ];
      };
    };

    systemd.timers.bento-hub-sweep = {
      description = "Periodic Bento cluster sweep";
      wantedBy = [ "timers.target" ];
      timerConfig = { OnCalendar = s.onCalendar; Persistent = true; RandomizedDelaySec = "30min"; };
    };
  };
}
