// Does a new system need a reboot? Exactly when the store paths behind its
// kernel, initrd or kernel modules differ from the running system's (upstream
// Bento's REBOOT marker). Compared by realpath, so two system closures that
// share the same kernel derivation never trigger a reboot, however much else
// changed.
import { realpath } from 'node:fs/promises';
import path from 'node:path';

export const BOOT_ARTIFACTS = ['kernel', 'initrd', 'kernel-modules'] as const;
export type BootArtifact = (typeof BOOT_ARTIFACTS)[number];

export type BootArtifacts = Record<BootArtifact, string | null>;

/** The resolved store paths of SYSTEM/kernel, SYSTEM/initrd and SYSTEM/kernel-modules (null if absent). */
export async function bootArtifacts(system: string): Promise<BootArtifacts> {
  const out = {} as BootArtifacts;
  for (const a of BOOT_ARTIFACTS) out[a] = await realpath(path.join(system, a)).catch(() => null);
  return out;
}

export interface RebootDecision {
  reboot: boolean;
  /** Which of kernel, initrd, kernel-modules differ. */
  changed: BootArtifact[];
  from: BootArtifacts;
  to: BootArtifacts;
}

/**
 * Compare the running system with the new one. A missing artifact on both
 * sides is "unchanged" (containers have no kernel); missing on one side only
 * counts as a change.
 */
export async function decideReboot(oldSystem: string, newSystem: string): Promise<RebootDecision> {
  const [from, to] = await Promise.all([bootArtifacts(oldSystem), bootArtifacts(newSystem)]);
  const changed = BOOT_ARTIFACTS.filter((a) => from[a] !== to[a]);
  return { reboot: changed.length > 0, changed, from, to };
}
