# NixOS VM test of reboot on kernel change (issue 9; needs KVM, does not run
# on the CI machines of this repo):
#   nix build .#checks.x86_64-linux.reboot-test -L
#
# A real kernel change, a real reboot through a real boot loader: the client
# boots with systemd-boot on an EFI disk image (useBootLoader), so after a
# switch the loader's default entry is the new generation and a reboot boots
# the new kernel. The agent has rebootOnKernelChange on and the rollback
# guard on. Scenarios:
#   1. switch to a system with another kernel: the guard confirms, the job
#      ends success, the agent reboots the machine, the machine boots the new
#      kernel, the agent comes back through its tunnel and the hub logs
#      "agent back after the reboot" and shows it in `bento-hub status`;
#      the guard record is gone and nothing was rolled back;
#   2. switch to another system with the same kernel: no reboot (same boot id).
{ pkgs, self }:
let
  system = pkgs.stdenv.hostPlatform.system;
  bento = self.packages.${system}.default;
  hub = import ./test-hub-key.nix { inherit pkgs; };

  # The client's prebuilt specialisations, recorded in /var/lib/bento-test/specs
  # at the start (a booted specialisation has no specialisations of its own).
  fakeRebuild = import ./rebuild-standin.nix { inherit pkgs; specsDir = "/var/lib/bento-test/specs"; };
in
pkgs.testers.runNixOSTest {
  name = "bento-reboot";

  nodes = {
    hub = { ... }: {
      imports = [ self.nixosModules.hub ];
      services.bento.hub = {
        enable = true;
        package = bento;
        openFirewall = true;
        hostKeyFile = "${hub.key}";
      };
    };

    client = { lib, pkgs, ... }: {
      imports = [ self.nixosModules.client ];
      # A real boot loader, so that a reboot boots what the profile points at.
      virtualisation.useBootLoader = true;
      virtualisation.useEFIBoot = true;
      boot.loader.systemd-boot.enable = true;
      boot.loader.efi.canTouchEfiVariables = true;
      services.openssh.enable = true;
      services.bento.client = {
        enable = true;
        package = bento;
        hub = "ssh://hub:2222";
        hubFingerprint = hub.fingerprint;
        rebuildCommand = [ "${fakeRebuild}" ];
        backoff = { initialMs = 500; maxMs = 5000; };
        rollbackTimeoutMs = 120000;
        rebootOnKernelChange = true;
        pullInterval = null;
      };
      systemd.tmpfiles.rules = [ "d /var/lib/bento-test 0755 root root -" ];
      environment.etc."bento-test-version".text = lib.mkDefault "1";

      # Another kernel (and so another initrd and module tree).
      specialisation.newkernel.configuration = {
        boot.kernelPackages = pkgs.linuxPackages_latest;
        environment.etc."bento-test-version".text = "newkernel";
      };
      # The same new kernel, something else changed: no reboot.
      specialisation.samekernel.configuration = {
        boot.kernelPackages = pkgs.linuxPackages_latest;
        environment.etc."bento-test-version".text = "samekernel";
      };
    };
  };

  testScript = { nodes, ... }: ''
    import json

    DIR = "--dir /var/lib/bento"

    def boot_id():
        return client.succeed("cat /proc/sys/kernel/random/boot_id").strip()

    def spec(name):
        return client.succeed(f"readlink -f /var/lib/bento-test/specs/{name}").strip()

    hub.start()
    # Without allow_reboot the VM's qemu exits when the guest reboots.
    client.start(allow_reboot=True)
    hub.wait_for_unit("bento-hub.service")
    hub.wait_for_open_port(2222)
    client.wait_for_unit("multi-user.target")

    with subtest("enrol the client; record the specialisations"):
        client.succeed("mkdir -p /var/lib/bento-test/specs")
        for name in ["newkernel", "samekernel"]:
            client.succeed(f"ln -sfn $(readlink -f /run/booted-system/specialisation/{name}) /var/lib/bento-test/specs/{name}")
        client.wait_for_unit("sshd.service")
        key = client.succeed("cat /etc/ssh/ssh_host_ed25519_key.pub").strip()
        hub.succeed(f"runuser -u bento -- bento-hub add-host client {DIR} --key '{key}'")
        hub.wait_until_succeeds(f"bento-hub list --json {DIR} | grep -q '\"client\"'", timeout=120)

    with subtest("a switch to another kernel reboots into it and the agent reports back through its tunnel"):
        before = boot_id()
        old_kernel = client.succeed("uname -r").strip()
        client.succeed("echo newkernel > /var/lib/bento-test/target")
        out = hub.succeed(f"bento-hub trigger client {DIR} --json")
        end = [json.loads(l) for l in out.splitlines() if '"ev":"end"' in l][0]
        assert end["outcome"] == "success", end
        # The hub hears it first: the agent's hello after the boot carries the report.
        hub.wait_until_succeeds("journalctl -u bento-hub.service | grep -q 'agent back after the reboot it requested'", timeout=600)
        # The guest rebooted on its own: reconnect the driver to the new boot.
        client.connected = False
        client.wait_for_unit("multi-user.target")
        assert boot_id() != before, "the machine rebooted"
        assert client.succeed("readlink -f /run/booted-system").strip() == spec("newkernel")
        new_kernel = client.succeed("uname -r").strip()
        assert new_kernel != old_kernel, (old_kernel, new_kernel)
        client.succeed(f"test -d /run/booted-system/kernel-modules/lib/modules/{new_kernel}")
        client.succeed("test \"$(cat /etc/bento-test-version)\" = newkernel")
        client.fail("test -e /var/lib/bento-client/rollback-guard.json")
        client.fail("test -e /var/lib/bento-client/reboot.json")
        status = json.loads(hub.succeed(f"bento-hub status --json {DIR}"))
        host = [h for h in status["hosts"] if h["name"] == "client"][0]
        assert host["lastReboot"]["jobId"] == end["jobId"], host
        assert host["lastReboot"]["system"] == spec("newkernel"), host
        assert "back after the reboot" in (host["detail"] or ""), host
        hub.fail("journalctl -u bento-hub.service | grep -q 'rolled back'")

    with subtest("a switch that keeps the kernel does not reboot"):
        before = boot_id()
        client.succeed("echo samekernel > /var/lib/bento-test/target")
        out = hub.succeed(f"bento-hub trigger client {DIR} --json")
        assert "no reboot needed" in out, out
        client.succeed("test \"$(cat /etc/bento-test-version)\" = samekernel")
        client.sleep(10)
        assert boot_id() == before, "no reboot"
  '';
}
