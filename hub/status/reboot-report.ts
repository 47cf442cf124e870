// An agent that rebooted on purpose (rebootOnKernelChange) says so in the
// hello of its first connection after the boot (client/reboot/hooks.ts). The
// hub logs it and keeps it with the host's facts, so `bento-hub status` can
// say "back after the reboot for job X" and whether the expected system booted.
import type { Hello } from '../../common/protocol/messages.js';
import type { RebootReport, StatusJob } from '../../common/protocol/admin.js';
import type { Logger } from '../../common/platform/log.js';

/** The report carried by this hello, or null when it carries none. */
export function rebootReport(hello: Hello, now = new Date()): RebootReport | null {
  if (!hello.rebootJobId) return null;
  return {
    jobId: hello.rebootJobId,
    requestedAt: hello.rebootRequestedAt ?? '',
    method: hello.rebootMethod ?? 'reboot',
    reportedAt: now.toISOString(),
    system: hello.system,
    expected: hello.rebootExpected ?? null,
  };
}

export function logReboot(log: Logger, host: string, r: RebootReport): void {
  const asExpected = r.expected === null || r.expected === r.system;
  const fields = { host, jobId: r.jobId, requestedAt: r.requestedAt, method: r.method, system: r.system, expected: r.expected };
  if (asExpected) log.info(fields, 'agent back after the reboot it requested (kernel change)');
  else log.warn(fields, 'agent back after the reboot it requested, but running another system than expected');
}

/**
 * A sentence for the status detail while the reboot is the latest news (no
 * job ended after the agent reported it), else null.
 */
export function rebootNote(r: RebootReport | undefined | null, lastJob: StatusJob | null): string | null {
  if (!r) return null;
  if (lastJob?.endedAt && lastJob.endedAt > r.reportedAt && lastJob.id !== r.jobId) return null;
  const booted = r.expected && r.system !== r.expected ? `booted ${r.system ?? 'an unknown system'}, NOT the expected ${r.expected}` : `booted ${r.system ?? 'an unknown system'}`;
  return `back after the ${r.method === 'kexec' ? 'kexec' : 'reboot'} requested by job ${r.jobId} (kernel change) at ${r.reportedAt}; ${booted}`;
}
