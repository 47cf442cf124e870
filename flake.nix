{
  description = "Bento: a NixOS fleet orchestrator (hub + agents over one outbound SSH tunnel)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      # Linux only: the agent drives nixos-rebuild, and the dev shell holds
      # nftables/iproute2 for the NAT test fixtures.
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: {
        bento-fleet = final.callPackage ./nixos/package.nix { };
      };

      packages = forAll (pkgs: rec {
        bento-fleet = pkgs.callPackage ./nixos/package.nix { };
        bento = bento-fleet;
        default = bento-fleet;
      });

      # The modules proper default `package` to pkgs.bento-fleet (mkPackageOption);
      # imported from this flake they default it to the flake's own build, so
      # importing the module is enough. The `key` makes importing both
      # nixosModules.hub and nixosModules.default harmless (one definition).
      nixosModules =
        let
          withPackage = name: {
            key = "bento-fleet#nixosModules.${name}";
            imports = [
              (./nixos/modules + "/${name}/module.nix")
              ({ lib, pkgs, ... }: {
                services.bento.${name}.package = lib.mkDefault
                  (self.packages.${pkgs.stdenv.hostPlatform.system}.default or (pkgs.callPackage ./nixos/package.nix { }));
              })
            ];
          };
        in
        {
          hub = withPackage "hub";
          client = withPackage "client";
          default = { imports = [ (withPackage "hub") (withPackage "client") ]; };
        };

      devShells = forAll (pkgs: {
        # Everything the test suite drives for real (see README and test/).
        default = pkgs.mkShell {
          packages = with pkgs; [
            nodejs_24
            openssh
            tor
            tinyproxy
            corkscrew
            microsocks
            dante
            nftables
            iproute2
            nix
            chromium
          ];
        };
      });

      # Need KVM: nix build .#checks.x86_64-linux.vm-test -L (and .reboot-test)
      checks = forAll (pkgs: {
        vm-test = import ./nixos/tests/vm.nix { inherit pkgs self; };
        reboot-test = import ./nixos/tests/reboot.nix { inherit pkgs self; };
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      });

      formatter = forAll (pkgs: pkgs.nixpkgs-fmt);
    };
}
