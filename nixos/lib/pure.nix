# Pure helpers shared by the modules, their assertion lists and the unit test
# (test/unit/nixos-modules.test.ts). No lib, no pkgs: this file must evaluate
# with a bare `nix-instantiate --eval`, so the option -> JSON mapping and the
# checks can be tested on machines without nixpkgs.
rec {
  # Drop attributes whose value is null: the loaders treat "absent" as "use
  # the default", and some of them reject an explicit null.
  filterNulls = attrs:
    builtins.listToAttrs (builtins.concatMap
      (n: if attrs.${n} == null then [ ] else [ { name = n; value = attrs.${n}; } ])
      (builtins.attrNames attrs));

  # Decimal string -> int, without fromJSON's refusal of leading zeros.
  toInt = s:
    let m = builtins.match "0*([1-9][0-9]*|0)" s;
    in if m == null then null else builtins.fromJSON (builtins.head m);

  # "HOST:PORT" / "[V6]:PORT" -> { host; port; } or null. Same grammar as
  # parseHostPort in hub/fleet/hub-config.ts.
  parseHostPort = s:
    let
      m = if builtins.isString s then builtins.match "\\[([0-9a-fA-F:.]+)]:([0-9]{1,5})|([^][:space:]:[]+):([0-9]{1,5})" s else null;
      at = builtins.elemAt m;
      port = toInt (if at 0 != null then at 1 else at 3);
    in
    if m == null || port > 65535 then null
    else { host = if at 0 != null then at 0 else at 2; inherit port; bracketed = at 0 != null; };

  isHostPort = s: parseHostPort s != null;

  lower = builtins.replaceStrings
    [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
    [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];

  # "scheme://[user@]host[:port][/path]" -> { scheme; host; } or null.
  parseUrl = s:
    let m = if builtins.isString s then builtins.match "([A-Za-z][A-Za-z0-9+.-]*)://([^/?#@]*@)?(\\[[^]]*]|[^]/?#:[]*)(:[0-9]*)?([/?#].*)?" s else null;
    in if m == null then null else { scheme = lower (builtins.elemAt m 0); host = lower (builtins.elemAt m 2); hasUser = builtins.elemAt m 1 != null; };

  # Same as isLoopbackHost in common/platform/web-origin.ts.
  isLoopback = host:
    let h = builtins.replaceStrings [ "[" "]" ] [ "" "" ] (lower host);
    in builtins.elem h [ "localhost" "127.0.0.1" "::1" "::ffff:127.0.0.1" ] || builtins.match "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}" h != null;

  isOnion = host: builtins.match ".*\\.onion\\.?" host != null;

  # The agent's rules, in client/config.ts and common/protocol/*.ts.
  isHostName = s: builtins.isString s && builtins.match "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?" s != null;
  isFingerprint = s: builtins.isString s && builtins.match "SHA256:[A-Za-z0-9+/]{43}" s != null;
  isAbsolute = s: builtins.isString s && builtins.substring 0 1 s == "/";
  hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;

  # Assertion list -> messages of the failing ones (for tests and docs).
  failures = checks: map (c: c.message) (builtins.filter (c: !c.assertion) checks);
}
