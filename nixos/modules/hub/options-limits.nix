# services.bento.hub.settings.limits: one typed option per hub.json "limits"
# key, generated from limits.nix (defaults, ranges, descriptions). null keeps
# the hub's default, which the description names: rendering drops nulls, so
# hub.json holds only what the admin chose (and, with onion.enable, Tor's
# address in `exempt`, see config.nix).
{ lib }:
let
  inherit (lib) mkOption types;
  limits = import ./limits.nix;
  one = name: l: mkOption {
    type = types.nullOr (types.ints.between l.min l.max);
    default = null;
    description = "${l.description} null: the hub's default, ${toString l.default}.";
  };
in
mkOption {
  default = { };
  description = ''
    What peers may cost the hub: deadlines and per-source limits for
    unauthenticated connections, what one agent may have in flight, jobs
    recorded on a host's word, stored job output, and readers that fall
    behind (docs/security.md "Limits" says what happens when each is hit).
  '';
  type = types.submodule {
    options = lib.mapAttrs one limits // {
      exempt = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.1.0.5/32" ];
        description = ''
          Sources (an address or a CIDR) with no per-source limit and no
          penalties: the address a reverse proxy or Tor connects from, which
          many hosts share. `onion.enable` adds Tor's address here itself.
        '';
      };
    };
  };
}
