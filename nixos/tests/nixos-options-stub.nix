# Test-only: typed declarations of exactly the NixOS options the Bento
# modules set or read, with nixpkgs' own names, and its types and defaults
# as far as lib has them, so the modules can be evaluated by the REAL module system
# (lib.evalModules from the vendored nixpkgs lib) on a machine without
# nixpkgs. There is no catch-all: an option the modules set that is not
# declared here (a typo, or a NixOS option this file lacks) is an
# evaluation error, exactly as it would be against NixOS.
#
# Where nixpkgs uses a custom type (systemd's unit options, the etc entry)
# this file uses the nearest lib type and says so. Two deliberate
# differences: nix.settings has no freeform part (NixOS accepts any nix.conf
# key there, this stub only the two keys the client module sets, so a typo in
# them fails here), and only the sub-options the modules use are declared
# inside systemd units, users, groups, etc entries and Tor onion services.
# Add an option here (with nixpkgs' type) when a module starts using it.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  # nixpkgs: nixos/lib/systemd-unit-options.nix `unitOption` (lists merge by
  # concatenation, single values must agree); the nearest lib type.
  unitScalar = types.oneOf [ types.bool types.int types.str types.path types.package ];
  unitOption = types.either unitScalar (types.listOf unitScalar);

  # The sub-options of systemd.services.<name> the modules use.
  serviceOptions = { name, ... }: {
    options = {
      description = mkOption { type = types.singleLineStr; default = ""; description = "Unit description."; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that want this one."; };
      wants = mkOption { type = types.listOf types.str; default = [ ]; description = "Wants= dependencies."; };
      after = mkOption { type = types.listOf types.str; default = [ ]; description = "After= ordering."; };
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; description = "Packages on the unit's PATH."; };
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
        description = "Environment of the unit's processes.";
      };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section."; };
      restartIfChanged = mkOption { type = types.bool; default = true; description = "Restart the unit when it changed in a switch."; };
      stopIfChanged = mkOption { type = types.bool; default = true; description = "Stop, rather than restart, a changed unit."; };
    };
  };

  timerOptions = { name, ... }: {
    options = {
      description = mkOption { type = types.singleLineStr; default = ""; description = "Unit description."; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that want this one."; };
      timerConfig = mkOption { type = types.attrsOf unitOption; description = "[Timer] section."; };
    };
  };

  userOptions = { name, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; default = name; description = "User name."; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "A system user."; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "A normal user."; };
      group = mkOption { type = types.str; default = ""; description = "Primary group."; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "Supplementary groups."; };
      home = mkOption { type = types.passwdEntry types.path; default = "/var/empty"; description = "Home directory."; };
      description = mkOption { type = types.passwdEntry types.str; default = ""; description = "GECOS field."; };
    };
  };

  groupOptions = { name, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; default = name; description = "Group name."; };
      gid = mkOption { type = types.nullOr types.int; default = null; description = "Group id."; };
      members = mkOption { type = types.listOf (types.passwdEntry types.str); default = [ ]; description = "Members."; };
    };
  };

  # nixpkgs: nixos/modules/system/etc/etc.nix (text is turned into source there).
  etcOptions = { name, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to create this file."; };
      target = mkOption { type = types.str; default = name; description = "Path relative to /etc."; };
      text = mkOption { type = types.nullOr types.lines; default = null; description = "Contents."; };
      source = mkOption { type = types.path; description = "Source file."; };
      mode = mkOption { type = types.str; default = "symlink"; description = "File mode, or symlink."; };
    };
  };

  # nixpkgs: nixos/modules/services/security/tor.nix, relay.onionServices.<name>.map.
  onionTarget = types.submodule {
    options = {
      addr = mkOption { type = types.nullOr types.str; default = null; description = "Target address."; };
      port = mkOption { type = types.nullOr types.port; default = null; description = "Target port."; };
    };
  };
  onionOptions = { name, ... }: {
    options.map = mkOption {
      type = types.listOf (types.either types.port (types.submodule {
        options = {
          port = mkOption { type = types.port; description = "Virtual port."; };
          target = mkOption { type = types.nullOr onionTarget; default = null; description = "Where connections go."; };
        };
      }));
      default = [ ];
      description = "Virtual ports of the onion service.";
    };
  };

  # nixpkgs: environment.variables / sessionVariables.
  envValue = types.oneOf [ (types.listOf (types.oneOf [ types.int types.str types.path ])) types.int types.str types.path ];
  joinEnv = lib.mapAttrs (_: v: if lib.isList v then lib.concatStringsSep ":" v else "${toString v}");
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption { type = types.listOf types.unspecified; internal = true; default = [ ]; description = "Assertions."; };
    warnings = mkOption { type = types.listOf types.str; internal = true; default = [ ]; description = "Warnings."; };

    systemd.package = mkOption { type = types.package; default = pkgs.systemd; description = "systemd."; };
    systemd.services = mkOption { type = types.attrsOf (types.submodule serviceOptions); default = { }; description = "Services."; };
    systemd.timers = mkOption { type = types.attrsOf (types.submodule timerOptions); default = { }; description = "Timers."; };
    systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d rules."; };

    users.users = mkOption { type = types.attrsOf (types.submodule userOptions); default = { }; description = "Users."; };
    users.groups = mkOption { type = types.attrsOf (types.submodule groupOptions); default = { }; description = "Groups."; };

    environment.etc = mkOption { type = types.attrsOf (types.submodule etcOptions); default = { }; description = "/etc entries."; };
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "System packages."; };
    environment.variables = mkOption { type = types.attrsOf envValue; default = { }; apply = joinEnv; description = "Global environment."; };
    environment.sessionVariables = mkOption { type = types.attrsOf envValue; default = { }; apply = joinEnv; description = "Session environment."; };

    networking.hostName = mkOption { type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$"; default = "nixos"; description = "Host name."; };
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "Open TCP ports."; };
    networking.proxy.envVars = mkOption { type = types.attrs; internal = true; default = { }; description = "Proxy environment."; };

    services.openssh.enable = mkOption { type = types.bool; default = false; description = "OpenSSH daemon."; };
    services.tor.enable = mkOption { type = types.bool; default = false; description = "Tor."; };
    services.tor.client.enable = mkOption { type = types.bool; default = false; description = "Tor's SOCKS client port."; };
    services.tor.relay.onionServices = mkOption { type = types.attrsOf (types.submodule onionOptions); default = { }; description = "Onion services."; };

    nix.package = mkOption { type = types.package; default = pkgs.nix; description = "Nix."; };
    nix.envVars = mkOption { type = types.attrs; internal = true; default = { }; description = "Environment of Nix commands."; };
    nix.settings = mkOption {
      type = types.submodule {
        options.substituters = mkOption { type = types.listOf types.str; default = [ ]; description = "Substituters."; };
        options.trusted-public-keys = mkOption { type = types.listOf types.str; default = [ ]; description = "Trusted keys."; };
      };
      default = { };
      description = "nix.conf.";
    };

    # nixos/modules/system/build.nix: free-form, filled by other modules.
    system.build = mkOption {
      type = types.submoduleWith { modules = [ { freeformType = types.lazyAttrsOf (types.uniq types.unspecified); } ]; };
      default = { };
      description = "Build products.";
    };
  };

  # nixos/modules/installer/tools/tools.nix provides nixos-rebuild here.
  config.system.build.nixos-rebuild = pkgs.nixos-rebuild;
}
