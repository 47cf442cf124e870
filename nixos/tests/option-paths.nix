# The option paths of services.bento.<which>, as the REAL module system
# declares them (lib.optionAttrSetToDocList over the evaluated options), with
# the prefix removed: [ "backoff" "backoff.initialMs" "endpoints" "endpoints.*.url" ... ].
# Sub-options of a list of submodules appear under "*", of an attribute set
# under "<name>". Internal options (configFile, the module system's own
# _module.*) are left out; hidden ones (the aliases mkRenamedOptionModule
# leaves) are listed separately. test/unit/nixos-modules.test.ts compares the visible
# ones with the examples and render.nix, so a renamed option cannot silently
# stop reaching the JSON config.
{ libDir, which, modules ? [ ] }:
let
  inherit (import ./modules-eval.nix { inherit libDir modules; }) lib eval;
  prefix = "services.bento.${which}.";
  docs = lib.optionAttrSetToDocList eval.options.services.bento.${which};
  strip = o: lib.removePrefix prefix o.name;
in
{
  visible = map strip (lib.filter (o: o.visible && !o.internal) docs);
  hidden = map strip (lib.filter (o: !o.visible && !o.internal) docs);
}
