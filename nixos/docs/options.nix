# The option documentation of services.bento.*, from the declarations, by
# the real module system: lib.optionAttrSetToDocList over the modules
# evaluated with nixos/tests/modules-eval.nix. Visible, non-internal options
# only, in declaration-independent (alphabetical) order, with repository-
# relative declaration paths. nixos/docs/generate.mjs renders it to
# docs/nixos-options.md (npm run docs:nixos).
{ libDir }:
let
  inherit (import ../tests/modules-eval.nix { inherit libDir; }) lib eval;
  root = toString ../.. + "/";
  text = v: if v == null then null else if v ? text then v.text else builtins.toJSON v;
  entry = o: {
    inherit (o) name description type readOnly;
    default = text (o.default or null);
    example = text (o.example or null);
    declarations = map (d: lib.removePrefix root (toString d)) o.declarations;
  };
in
map entry (lib.filter (o: o.visible && !o.internal) (lib.optionAttrSetToDocList eval.options.services.bento))
