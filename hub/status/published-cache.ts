// The version the hub publishes for each host (hosts/NAME jail, written by
// `bento-hub deploy`), read ahead so the read model (read-model.ts) never
// waits on the disk: one small file per host, re-read by `status` before it
// answers and every 10 s while the dashboard or metrics are on.
import { readPublished } from '../publish/published.js';
import type { Published } from './derive.js';

export class PublishedCache {
  private readonly map = new Map<string, Published | null>();

  constructor(private readonly fleetDir: string, private readonly read: (fleetDir: string, host: string) => Promise<Published | null> = readPublished) {}

  /** Re-read the published version of these hosts. */
  async refresh(hosts: string[]): Promise<void> {
    const got = await Promise.all(hosts.map((h) => this.read(this.fleetDir, h).catch(() => null)));
    hosts.forEach((h, i) => this.map.set(h, got[i] ?? null));
  }

  get(host: string): Published | null {
    return this.map.get(host) ?? null;
  }
}
