# Evaluates a module's options.nix WITHOUT nixpkgs, through a stub of the few
# lib functions the option files use, and returns the option paths under
# `path`, e.g. [ "backoff" "backoff.initialMs" "endpoints" "endpoints.*.url" ].
# The unit test compares them with the example settings and render.nix, so a
# renamed option cannot silently stop reaching the JSON config.
# Anything else from lib or pkgs fails with "attribute missing": extend the
# stub when options.nix starts using it.
{ file, path }:
let
  leaf = name: { kind = "leaf"; inherit name; };
  types = {
    bool = leaf "bool"; str = leaf "str"; nonEmptyStr = leaf "nonEmptyStr"; int = leaf "int";
    port = leaf "port"; path = leaf "path"; package = leaf "package"; attrs = leaf "attrs";
    ints = { between = _: _: leaf "int"; positive = leaf "int"; unsigned = leaf "int"; };
    nullOr = t: { kind = "wrap"; elem = t; };
    listOf = t: { kind = "list"; elem = t; };
    attrsOf = _: leaf "attrsOf";
    either = _: _: leaf "either";
    enum = _: leaf "enum";
    strMatching = _: leaf "strMatching";
    submodule = m:
      let mod = if builtins.isFunction m then m { name = "<name>"; config = { }; lib = stubLib; } else m;
      in { kind = "submodule"; options = mod.options or { }; };
  };
  stubLib = {
    inherit types;
    mkOption = o: o // { _type = "option"; };
    mkEnableOption = d: { _type = "option"; type = types.bool; description = d; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
  };
  stubPkgs = { formats.json = _: { type = leaf "json"; }; };
  stubConfig = { };
  mod = import file { lib = stubLib; pkgs = stubPkgs; config = stubConfig; };
  at = builtins.foldl' (v: n: v.${n}) mod.options path;

  join = prefix: n: if prefix == "" then n else "${prefix}.${n}";
  walkType = prefix: t:
    if t.kind == "submodule" then walk prefix t.options
    else if t.kind == "wrap" then walkType prefix t.elem
    else if t.kind == "list" then walkType (join prefix "*") t.elem
    else [ ];
  walk = prefix: v:
    builtins.concatMap (n:
      let x = v.${n}; p = join prefix n; in
      if (x._type or null) == "option" then [ p ] ++ walkType p (x.type or (leaf "untyped"))
      else walk p x)
      (builtins.attrNames v);
in
walk "" at
