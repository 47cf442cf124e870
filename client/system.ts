// What system this host runs: the exact store path behind /run/current-system
// and the generation number of the system profile. Both are facts read from
// symlinks, never guessed.
import { readlink, realpath } from 'node:fs/promises';

export async function currentSystemPath(link: string): Promise<string | null> {
  try {
    return await realpath(link);
  } catch {
    return null;
  }
}

/** "/nix/var/nix/profiles/system" -> "system-42-link" -> 42. */
export async function profileGeneration(profile: string): Promise<number | null> {
  try {
    const target = await readlink(profile);
    const m = /-(\d+)-link$/.exec(target);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
