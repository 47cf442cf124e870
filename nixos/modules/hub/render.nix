# services.bento.hub options -> hub.json (validated by validateHubConfig in
# hub/fleet/hub-config.ts). Pure: the unit test applies it to
# nixos/examples/hub-settings.nix and feeds the result to the real loader.
# Null settings are dropped: the daemon's defaults for them are null anyway.
cfg: (import ../../lib/pure.nix).filterNulls (cfg.settings or { })
