# services.bento.hub: the hardened daemon unit. First start initializes the
# fleet; every start installs the rendered hub.json.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.bento.hub;
  pure = import ../../lib/pure.nix;
  exe = "${cfg.package}/bin/bento-hub";
  dir = cfg.dataDir;
  underVarLib = lib.hasPrefix "/var/lib/" dir;
  ports = map (a: (pure.parseHostPort a).port or 0) ([ cfg.settings.listen ] ++ lib.optional (cfg.settings.wsListen != null) cfg.settings.wsListen);
  lowPort = lib.any (p: p < 1024) ports;
  # Admins outside the hub's group need to traverse dataDir to reach hub.sock.
  foreignAdminGroup = cfg.settings.adminGroup != null && cfg.settings.adminGroup != cfg.group;

  prestart = pkgs.writeShellScript "bento-hub-prestart" ''
    set -eu
    cd ${lib.escapeShellArg dir}
    # `init` refuses an existing hub.json and would replace an existing key
    # (every agent pins it), so only a directory with neither is initialized.
    if [ ! -e hub.json ] && [ ! -e hub_ed25519_key ]; then
      ${exe} init --dir ${lib.escapeShellArg dir}
    fi
    ${lib.optionalString (cfg.hostKeyFile != null) ''
      install -m 0600 "$CREDENTIALS_DIRECTORY/host-key" hub_ed25519_key.tmp
      ${pkgs.openssh}/bin/ssh-keygen -y -f hub_ed25519_key.tmp > hub_ed25519_key.pub.tmp
      mv -f hub_ed25519_key.tmp hub_ed25519_key
      mv -f hub_ed25519_key.pub.tmp hub_ed25519_key.pub
    ''}
    # The module owns hub.json: replace it atomically at every start.
    install -m 0644 ${cfg.configFile} hub.json.tmp
    mv -f hub.json.tmp hub.json
    mkdir -p hosts
  '';
in
{
  config = lib.mkIf cfg.enable {
    systemd.tmpfiles.rules = lib.optional (!underVarLib) "d ${dir} ${if foreignAdminGroup then "0751" else "0750"} ${cfg.user} ${cfg.group} -";

    systemd.services.bento-hub = {
      description = "Bento hub: fleet tunnels, jobs and admin socket";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      path = [ pkgs.coreutils ];
      environment.BENTO_DIR = dir;
      serviceConfig = {
        User = cfg.user;
        Group = cfg.group;
        SupplementaryGroups = lib.optional foreignAdminGroup cfg.settings.adminGroup;
        ExecStartPre = "${prestart}";
        ExecStart = "${exe} serve --dir ${lib.escapeShellArg dir} --log-level ${cfg.logLevel}";
        Restart = "on-failure";
        RestartSec = "2s";
        LoadCredential = lib.optional (cfg.hostKeyFile != null) "host-key:${cfg.hostKeyFile}";
        UMask = "0027";
        ReadWritePaths = [ dir ];
        RemoveIPC = true;
      } // import ./hardening.nix // {
        # Only a listen port below 1024 (e.g. wss on 443) needs a capability.
        CapabilityBoundingSet = if lowPort then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
        AmbientCapabilities = lib.optional lowPort "CAP_NET_BIND_SERVICE";
        # No MemoryDenyWriteExecute: V8's JIT needs writable+executable pages.
      } // lib.optionalAttrs underVarLib {
        StateDirectory = lib.removePrefix "/var/lib/" dir;
        StateDirectoryMode = if foreignAdminGroup then "0751" else "0750";
      };
    };
  };
}
