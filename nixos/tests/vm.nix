# NixOS VM test (needs KVM; does not run on the CI machines of this repo):
#   nix build .#checks.x86_64-linux.vm-test -L
#
#   vlan 1 (public):   hub 192.168.1.2  ---  router 192.168.1.3
#   vlan 2 (private):  client 192.168.2.1 --- router 192.168.2.3 (NAT, drops new inbound)
#
# The client reaches the hub only through the router's NAT and the hub cannot
# open any connection to the client, so everything the hub does to the client
# (trigger, ssh) must ride the tunnel the agent opened. Scenarios: enrolment
# with the client's ssh host key and a pinned hub fingerprint, a triggered
# switch, ssh through the tunnel, and a switch that cuts the client off the
# hub, which the agent's rollback guard must undo.
{ pkgs, self }:
let
  system = pkgs.stdenv.hostPlatform.system;
  bento = self.packages.${system}.default;

  # The test-only hub key and the fingerprint the client pins (shared with reboot.nix).
  testHub = import ./test-hub-key.nix { inherit pkgs; };
  hubKey = testHub.key;
  hubFingerprint = testHub.fingerprint;

  # One of the client's prebuilt specialisations stands in for a rebuild.
  fakeRebuild = import ./rebuild-standin.nix { inherit pkgs; specsDir = "/run/booted-system/specialisation"; };
in
pkgs.testers.runNixOSTest {
  name = "bento";

  nodes = {
    hub = { ... }: {
      imports = [ self.nixosModules.hub ];
      virtualisation.vlans = [ 1 ];
      services.bento.hub = {
        enable = true;
        package = bento;
        openFirewall = true;
        hostKeyFile = "${hubKey}";
      };
      environment.systemPackages = [ pkgs.openssh ];
    };

    router = { ... }: {
      virtualisation.vlans = [ 1 2 ];
      networking.nat = {
        enable = true;
        internalInterfaces = [ "eth2" ];
        externalInterface = "eth1";
      };
      # A home router: nothing from outside may open a connection inside,
      # even for a host that routes to 192.168.2.0/24 through us.
      networking.firewall.extraCommands = ''
        iptables -w -I FORWARD -i eth1 -o eth2 -m conntrack --ctstate NEW -j DROP
      '';
    };

    client = { lib, nodes, ... }: {
      imports = [ self.nixosModules.client ];
      virtualisation.vlans = [ 2 ];
      networking.defaultGateway = (lib.head nodes.router.networking.interfaces.eth2.ipv4.addresses).address;
      services.openssh.enable = true;
      services.bento.client = {
        enable = true;
        package = bento;
        hub = "ssh://hub:2222";
        inherit hubFingerprint;
        rebuildCommand = [ "${fakeRebuild}" ];
        backoff = { initialMs = 500; maxMs = 5000; };
        pullInterval = null;
      };
      systemd.tmpfiles.rules = [ "d /var/lib/bento-test 0755 root root -" ];
      environment.etc."bento-test-version".text = lib.mkDefault "1";

      specialisation.v2.configuration = {
        environment.etc."bento-test-version".text = "2";
      };
      # Activating this one cuts the client off the hub: every packet from the
      # public side is dropped, so no fresh connection can succeed and the
      # agent must put the previous system back.
      specialisation.broken.configuration = {
        environment.etc."bento-test-version".text = "broken";
        networking.firewall.extraCommands = "iptables -w -I nixos-fw 1 -s 192.168.1.0/24 -j DROP";
      };
    };
  };

  testScript = { nodes, ... }: ''
    import json

    DIR = "--dir /var/lib/bento"
    router_public = "${nodes.router.networking.primaryIPAddress}"
    client_ip = "${nodes.client.networking.primaryIPAddress}"

    def current(m):
        return m.succeed("readlink -f /run/current-system").strip()

    def spec(m, name):
        return m.succeed(f"readlink -f /run/booted-system/specialisation/{name}").strip()

    start_all()
    hub.wait_for_unit("bento-hub.service")
    hub.wait_for_open_port(2222)

    with subtest("NAT: the client reaches the hub, the hub cannot reach the client"):
        client.wait_for_unit("network-online.target")
        client.succeed("ping -c1 -W5 hub")
        hub.fail(f"ping -c1 -W2 {client_ip}")
        hub.succeed(f"ip route add 192.168.2.0/24 via {router_public}")
        hub.fail(f"timeout 5 bash -c 'echo > /dev/tcp/{client_ip}/22'")

    with subtest("the hub key is the pinned one"):
        assert hub.succeed(f"bento-hub fingerprint {DIR}").strip() == "${hubFingerprint}"

    with subtest("enrol the client with its ssh host key"):
        client.wait_for_unit("sshd.service")
        key = client.succeed("cat /etc/ssh/ssh_host_ed25519_key.pub").strip()
        hub.succeed(f"runuser -u bento -- bento-hub add-host client {DIR} --key '{key}'")
        hub.wait_until_succeeds(f"bento-hub list --json {DIR} | grep -q '\"client\"'", timeout=120)
        clients = json.loads(hub.succeed(f"bento-hub list --json {DIR}"))["clients"]
        assert router_public in clients[0]["remoteAddress"], clients

    with subtest("a triggered switch reaches the host behind NAT"):
        client.succeed("echo v2 > /var/lib/bento-test/target")
        hub.succeed(f"bento-hub trigger client {DIR}")
        client.succeed("test \"$(cat /etc/bento-test-version)\" = 2")
        assert current(client) == spec(client, "v2")

    with subtest("ssh to the client through the tunnel"):
        hub.succeed("mkdir -p -m 700 /root/.ssh && ssh-keygen -q -t ed25519 -N ''' -f /root/.ssh/id_ed25519")
        pub = hub.succeed("cat /root/.ssh/id_ed25519.pub").strip()
        client.succeed(f"mkdir -p -m 700 /root/.ssh && echo '{pub}' >> /root/.ssh/authorized_keys")
        out = hub.succeed(
            "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"-o ProxyCommand='bento-hub proxy {DIR} %h 22' root@client cat /etc/bento-test-version"
        )
        assert out.strip() == "2", out

    with subtest("a switch that cuts the hub off is rolled back"):
        client.succeed("echo broken > /var/lib/bento-test/target")
        # The trigger cannot hear back while the client is cut off: run it detached.
        hub.succeed(f"(bento-hub trigger client {DIR} > /tmp/broken.log 2>&1; echo $? > /tmp/broken.rc) >/dev/null 2>&1 &")
        client.wait_until_succeeds("test \"$(cat /etc/bento-test-version)\" = broken", timeout=120)
        # The guard re-activates exactly the system that ran before (v2).
        client.wait_until_succeeds(
            "test \"$(readlink -f /run/current-system)\" = \"$(readlink -f /run/booted-system/specialisation/v2)\"",
            timeout=400,
        )
        client.succeed("test \"$(cat /etc/bento-test-version)\" = 2")
        hub.wait_until_succeeds(f"bento-hub list --json {DIR} | grep -q '\"client\"'", timeout=120)

    with subtest("after the rollback the host takes jobs again"):
        client.succeed("echo v2 > /var/lib/bento-test/target")
        hub.succeed(f"bento-hub trigger client {DIR}")
        assert current(client) == spec(client, "v2")
  '';
}
