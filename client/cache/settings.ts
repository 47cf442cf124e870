// Agent settings for issue 9 features, parsed here so client/config.ts only
// gains one line per key: the hub cache tunnel, the secrets directory and the
// reboot-on-kernel-change option.

export interface CacheSettings {
  /** Loopback port the agent listens on (127.0.0.1). */
  localPort: number;
  /** Name of the hub service (hub.json "services") the port forwards to; default "cache". */
  service: string;
}

export const ISSUE9_KEYS = ['cache', 'secretsDir', 'rebootOnKernelChange', 'rebootCommand', 'rebootMethod'] as const;

/** reboot: rebootCommand. kexec: load the new system's kernel and `systemctl kexec` (client/reboot/kexec.ts), else reboot. */
export const REBOOT_METHODS = ['reboot', 'kexec'] as const;
export type RebootMethod = (typeof REBOOT_METHODS)[number];

export function parseCacheSettings(raw: unknown, bad: (msg: string) => never): CacheSettings | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('"cache" must be { "localPort": PORT, "service"?: NAME } or null');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'localPort' && k !== 'service') bad(`"cache": unknown setting "${k}"`);
  const port = o['localPort'];
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) bad('"cache.localPort" must be a port 1..65535');
  const service = o['service'] ?? 'cache';
  if (typeof service !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(service)) bad('"cache.service" must be a hub service name like "cache"');
  return { localPort: port as number, service: service as string };
}

export function parseSecretsDir(raw: unknown, bad: (msg: string) => never): string {
  if (raw === undefined || raw === null) return '/run/bento-secrets';
  if (typeof raw !== 'string' || !raw.startsWith('/')) return bad('"secretsDir" must be an absolute path');
  return raw;
}

export function parseRebootOnKernelChange(raw: unknown, bad: (msg: string) => never): boolean {
  if (raw === undefined) return false;
  if (typeof raw !== 'boolean') return bad('"rebootOnKernelChange" must be true or false');
  return raw;
}

export function parseRebootCommand(raw: unknown, bad: (msg: string) => never): string[] {
  if (raw === undefined) return ['systemctl', 'reboot'];
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((a) => typeof a === 'string')) return bad('"rebootCommand" must be a non-empty argv array');
  return raw as string[];
}

export function parseRebootMethod(raw: unknown, bad: (msg: string) => never): RebootMethod {
  if (raw === undefined || raw === null) return 'reboot';
  if (typeof raw !== 'string' || !(REBOOT_METHODS as readonly string[]).includes(raw)) return bad('"rebootMethod" must be "reboot" or "kexec"');
  return raw as RebootMethod;
}
