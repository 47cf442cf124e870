// Fetch this host's secrets from the hub over its own SSH connection (the
// SECRETS_SUBSYSTEM channel; the hub answers with the bundle of the host that
// authenticated, nothing else) at each connection and before each job, and
// apply them (apply.ts). Logs carry the version and file count, never data.
import type { Client } from 'ssh2';
import type { Logger } from '../../common/platform/log.js';
import type { JobStart } from '../../common/protocol/messages.js';
import type { AgentPlugin } from '../agent.js';
import type { JobHooks } from '../jobs/manager.js';
import { SECRETS_SUBSYSTEM, applyBundle, validateBundle, type SecretBundle } from './apply.js';

const MAX_BUNDLE = 8 * 1024 * 1024;

export function fetchBundle(ssh: Client, timeoutMs = 20_000): Promise<SecretBundle> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out fetching secrets')), timeoutMs);
    ssh.subsys(SECRETS_SUBSYSTEM, (err, ch) => {
      if (err) { clearTimeout(t); reject(err); return; }
      const chunks: Buffer[] = [];
      let size = 0;
      ch.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BUNDLE) { ch.close(); clearTimeout(t); reject(new Error('secrets bundle too large')); return; }
        chunks.push(d);
      });
      ch.on('error', (e: Error) => { clearTimeout(t); reject(e); });
      ch.on('close', () => {
        clearTimeout(t);
        try {
          resolve(validateBundle(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        } catch (e) {
          reject(e instanceof SyntaxError ? new Error('malformed secrets bundle') : e);
        }
      });
    });
  });
}

export class SecretsSync implements AgentPlugin, JobHooks {
  private ssh: Client | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  version: string | null = null;

  constructor(private readonly secretsDir: string, private readonly log: Logger) {}

  onConnected(conn: { ssh: Client }): void {
    this.ssh = conn.ssh;
    void this.sync().catch(() => {});
  }

  onDisconnected(): void { this.ssh = null; }

  async prepare(job: JobStart, line: (data: string) => void): Promise<void> {
    if (job.action === 'switch' || job.action === 'boot' || job.action === 'test') {
      await this.sync().then((v) => { if (v) line(`secrets version ${v} in place`); }, (err: Error) => line(`secrets not updated: ${err.message}`));
    }
  }

  /** Fetch and apply; serialized. Returns the version in place. */
  sync(): Promise<string | null> {
    const run = this.chain.then(async () => {
      const ssh = this.ssh;
      if (!ssh) return this.version;
      try {
        const bundle = await fetchBundle(ssh);
        const changed = await applyBundle(this.secretsDir, bundle);
        this.version = bundle.version;
        if (changed) this.log.info({ version: bundle.version, files: bundle.files.length, dir: this.secretsDir }, 'secrets updated');
        return bundle.version;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not update secrets');
        throw err;
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }
}

export function installSecrets(agent: { use(p: AgentPlugin): void; addJobHooks(h: JobHooks): void }, secretsDir: string, log: Logger): SecretsSync {
  const s = new SecretsSync(secretsDir, log);
  agent.use(s);
  agent.addJobHooks(s);
  return s;
}
