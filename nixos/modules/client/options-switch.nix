# services.bento.client: what happens around a switch the agent runs, the
# rollback guard, reboots, self-restarts, the post-switch command and the
# machine-id pin (the rest of the options are in options.nix). Each maps 1:1
# onto the agent's JSON key of the same name (render.nix); machineId also
# pins the built system (config.nix).
{ lib, ... }:
let
  inherit (lib) mkOption types literalExpression;
  defaults = import ./defaults.nix;
in
{
  options.services.bento.client = {
    rollback = mkOption {
      type = types.bool;
      default = defaults.rollback;
      description = ''
        Magic rollback for switch/test jobs (docs/rollback.md): after the
        switch the agent must reconnect to the hub within rollbackTimeoutMs,
        or it re-activates the previous system.
      '';
    };
    rollbackTimeoutMs = mkOption {
      type = types.ints.between 1000 86400000;
      default = defaults.rollbackTimeoutMs;
      description = "Time a switched system has to complete a fresh connection to the hub before it is rolled back.";
    };

    rebootOnKernelChange = mkOption {
      type = types.bool;
      default = defaults.rebootOnKernelChange;
      description = "Reboot after a successful switch that changed the kernel, initrd or kernel modules.";
    };
    rebootCommand = mkOption {
      type = types.listOf types.str;
      default = defaults.rebootCommand;
      description = "argv run to reboot (rebootOnKernelChange).";
    };
    restartOnChange = mkOption {
      type = types.listOf types.str;
      default = defaults.restartOnChange;
      description = ''
        Files whose change makes the agent restart itself when idle (no job,
        no rollback decision pending, results acknowledged). The unit is not
        restarted by a switch (that would kill the switch the agent runs), so
        this is how a new bento-client package or new settings take effect
        without a reboot. The default watches the rendered config and
        /etc/bento/package, a link to `package`. Set to [ ] to apply changes
        only at the next start.
      '';
    };
    rebootMethod = mkOption {
      type = types.enum [ "reboot" "kexec" ];
      default = defaults.rebootMethod;
      description = ''
        How rebootOnKernelChange reboots: "reboot" runs rebootCommand; "kexec"
        loads the new system's kernel, initrd and kernel-params with kexec and
        runs `systemctl kexec` (no firmware, no boot loader), falling back to
        rebootCommand with the reason logged when that is not possible. The
        module puts kexec-tools on the agent's PATH for it.
      '';
    };

    postSwitchCommand = mkOption {
      type = types.nullOr (types.either types.path (types.nonEmptyListOf types.str));
      default = null;
      example = literalExpression ''
        pkgs.writeShellScript "bento-notify" '''
          ''${pkgs.curl}/bin/curl -fsS -d "$BENTO_HOST $BENTO_ACTION $BENTO_OUTCOME" https://ntfy.example.org/fleet
        '''
      '';
      description = ''
        Run by the agent after every switch, boot or test job, once its
        outcome is final (after the rollback guard's verdict, before a
        reboot): an executable, or an argv list. Its environment carries
        BENTO_HOST, BENTO_JOB_ID, BENTO_ACTION, BENTO_OUTCOME (success,
        failure, rolled-back, ...), BENTO_EXIT_CODE, BENTO_REASON,
        BENTO_GENERATION (the system profile's generation), BENTO_STORE_PATH
        (the system the job left active; for boot, the one set to boot) and
        BENTO_PREVIOUS_STORE_PATH. Its output goes into the job's log; a
        failure is logged and does not change the job's outcome. null: none.
      '';
    };
    postSwitchTimeoutMs = mkOption {
      type = types.ints.between 1000 3600000;
      default = defaults.postSwitchTimeoutMs;
      description = "Time postSwitchCommand may run before it is stopped (SIGTERM, then SIGKILL); the job's result waits for it.";
    };

    healthCommand = mkOption {
      type = types.nullOr (types.either types.path (types.nonEmptyListOf types.str));
      default = null;
      example = literalExpression ''
        pkgs.writeShellScript "bento-healthy" '''
          ''${pkgs.curl}/bin/curl -fsS http://127.0.0.1/health
        '''
      '';
      description = ''
        This host's own health check (docs/rollouts.md): run by the agent after
        a switch or test whose rebuild succeeded, on the new system, until it
        exits 0 (every healthIntervalMs, for at most healthTimeoutMs). A check
        that never passes fails the job, and the rollback guard re-activates
        the previous system. Its verdict goes to the hub with the job's result:
        `bento-hub rollout` counts a host as healthy only once it passed. The
        command is the host's, never the hub's: the hub cannot change it. An
        executable, or an argv list; BENTO_HOST, BENTO_JOB_ID and BENTO_ACTION
        are in its environment. null: no check.
      '';
    };
    healthTimeoutMs = mkOption {
      type = types.ints.between 1000 3600000;
      default = defaults.healthTimeoutMs;
      description = "How long healthCommand may take to pass after a switch or test before the job fails (and is rolled back).";
    };
    healthIntervalMs = mkOption {
      type = types.ints.between 100 600000;
      default = defaults.healthIntervalMs;
      description = "Pause between two attempts of healthCommand.";
    };

    machineId = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c";
      description = ''
        This host's /etc/machine-id, pinned in its configuration. The module
        writes it into every system built from this configuration (as
        etc/bento/machine-id inside the system's store path) and gives it to
        the agent. A pinned agent builds a new configuration first and, before
        anything is activated or the boot default changes, compares the built
        system's pin with /etc/machine-id: a system pinned to another machine,
        or to none, is refused with MACHINE_ID_MISMATCH, so a mixed-up publish
        cannot switch the wrong box. null: no pin, no check.
      '';
    };
  };
}
