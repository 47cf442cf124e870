// The rebuild command line for an action. An explicit rebuildCommand gets
// the action appended (and the flake/configuration flags, if set), so the
// default, `nixos-rebuild ACTION [--flake P#A | -I nixos-config=P]`, is just
// the case rebuildCommand = ["nixos-rebuild"].
import type { Action } from '../../common/protocol/messages.js';

export interface RebuildSpec {
  rebuildCommand: string[];
  flake: string | null;
  configuration: string | null;
}

export function rebuildArgv(spec: RebuildSpec, action: Action): string[] {
  const argv = [...spec.rebuildCommand, action];
  if (spec.flake) argv.push('--flake', spec.flake);
  else if (spec.configuration) argv.push('-I', `nixos-config=${spec.configuration}`);
  return argv;
}
