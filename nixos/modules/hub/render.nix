# services.bento.hub options -> hub.json (validated by validateHubConfig in
# hub/fleet/hub-config.ts). Pure: the unit test applies it to
# nixos/examples/hub-settings.nix and feeds the result to the real loader.
# Null settings are dropped: the daemon's defaults for them are null anyway
# (or "off", for dashboard, metrics and services). Inside publish a null
# (buildJobs) means "the hub's default"; inside dashboard and metrics a null
# tokenFile means "no token" and is kept.
cfg:
let
  pure = import ../../lib/pure.nix;
  s = pure.filterNulls (cfg.settings or { });
  limits = pure.filterNulls (s.limits or { });
  # Only what the admin (or onion.enable) chose: an empty section is no section.
  limitsOut = if limits ? exempt && limits.exempt == [ ] then removeAttrs limits [ "exempt" ] else limits;
in
removeAttrs s [ "limits" ]
  // (if limitsOut != { } then { limits = limitsOut; } else { })
  // (if s ? publish then { publish = pure.filterNulls s.publish; } else { })
  // (if s ? cluster then {
    cluster = let c = pure.filterNulls s.cluster; in
      c // (if c ? tls then { tls = pure.filterNulls c.tls; } else { });
  } else { })
