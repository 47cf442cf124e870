# The systemd sandbox both hub units share (unit.nix: the daemon; sweep.nix:
# the cluster sweep): no new privileges, a read-only system, no devices, no
# kernel tunables, IP and Unix sockets only, the system-service syscalls.
# Each unit adds its own writable paths and capabilities. Not here:
# RemoveIPC, which the daemon sets and a second unit of the same user must
# not (stopping it would remove the daemon's IPC objects).
{
  NoNewPrivileges = true;
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateTmp = true;
  PrivateDevices = true;
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  ProtectProc = "invisible";
  ProcSubset = "pid";
  RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  SystemCallArchitectures = "native";
  SystemCallFilter = [ "@system-service" "~@privileged" ];
  SystemCallErrorNumber = "EPERM";
}
