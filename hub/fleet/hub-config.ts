// hub.json: the hub's settings. Loaded and validated once at start; every
// field has a default so a freshly initialized fleet runs as is.
import { readJsonFile } from '../../common/platform/json-file.js';
import { BentoError } from '../../common/protocol/errors.js';
import { isHostPort } from './host-port.js';
import { validateServices, type ServiceMap } from '../services/allow-list.js';
import { checkClusterLogLimits, DEFAULT_PUBLISH_SETTINGS, validatePublishSettings, type PublishSettings } from '../publish/settings.js';
import { parseClusterOptions, type ResolvedClusterOptions } from '../cluster/options.js';
import { validateDashboardSettings, validateMetricsSettings, type DashboardSettings, type MetricsSettings } from '../web/settings.js';
import { validateLimits, type HubLimits } from './limits.js';

export interface HubConfig {
  /** ssh listen address, HOST:PORT. */
  listen: string;
  /** WebSocket listen address, HOST:PORT, or null for none. */
  wsListen: string | null;
  wsPath: string;
  tls: { cert: string; key: string } | null;
  /** Heartbeat period told to agents; a peer silent for 2.5 periods is dead. */
  heartbeatMs: number;
  /** Unix group allowed on the admin socket (mode 0660), or null for root/owner only (0600). */
  adminGroup: string | null;
  /** Finished jobs kept per host. */
  jobHistory: number;
  /** build / deploy / SFTP jail settings (hub/publish/settings.ts); absent = all defaults. */
  publish?: PublishSettings;
  /** Web dashboard (hub/web/settings.ts, docs/web.md); absent or null = off. */
  dashboard?: DashboardSettings | null;
  /** Prometheus endpoint (docs/web.md); absent or null = off. */
  metrics?: MetricsSettings | null;
  /** Hub services agents may reach through their tunnel, name -> "HOST:PORT" (hub/services/allow-list.ts); absent = none. */
  services?: ServiceMap;
  /** Where host secrets live, DIR/NAME/ (relative to the fleet dir); absent = hosts/NAME/secrets/ (hub/secrets/). */
  secretsDir?: string;
  /** One of several hubs sharing state on NATS JetStream (hub/cluster/options.ts, docs/cluster.md); absent = a single hub. */
  cluster?: ResolvedClusterOptions;
  /** What peers may cost the hub: handshakes, in-flight messages, adopted jobs, stored output, followers (hub/fleet/limits.ts, docs/security.md); absent = defaults. */
  limits?: HubLimits;
}

export const DEFAULT_HUB_CONFIG: HubConfig = {
  listen: '0.0.0.0:2222',
  wsListen: null,
  wsPath: '/bento',
  tls: null,
  heartbeatMs: 25_000,
  adminGroup: null,
  jobHistory: 50,
};

export function validateHubConfig(raw: unknown, source = 'hub.json'): HubConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BentoError('CONFIG_INVALID', `${source}: expected a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const known = new Set([...Object.keys(DEFAULT_HUB_CONFIG), 'publish', 'dashboard', 'metrics', 'services', 'secretsDir', 'limits', 'cluster']);
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new BentoError('CONFIG_INVALID', `${source}: unknown setting "${k}" (known: ${[...known].join(', ')})`);
  }
  const cfg: HubConfig = { ...DEFAULT_HUB_CONFIG, ...(o as Partial<HubConfig>) };
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: ${msg}`); };
  if (!isHostPort(cfg.listen)) bad(`"listen" must be HOST:PORT, got ${JSON.stringify(cfg.listen)}`);
  if (cfg.wsListen !== null && !isHostPort(cfg.wsListen)) bad(`"wsListen" must be HOST:PORT or null`);
  if (typeof cfg.wsPath !== 'string' || !cfg.wsPath.startsWith('/')) bad(`"wsPath" must start with "/"`);
  if (cfg.tls !== null && (typeof cfg.tls !== 'object' || typeof cfg.tls.cert !== 'string' || typeof cfg.tls.key !== 'string')) {
    bad(`"tls" must be null or { "cert": PATH, "key": PATH }`);
  }
  if (!Number.isInteger(cfg.heartbeatMs) || cfg.heartbeatMs < 100 || cfg.heartbeatMs > 3_600_000) bad(`"heartbeatMs" must be an integer in 100..3600000`);
  if (cfg.adminGroup !== null && typeof cfg.adminGroup !== 'string') bad(`"adminGroup" must be a group name or null`);
  if (!Number.isInteger(cfg.jobHistory) || cfg.jobHistory < 1) bad(`"jobHistory" must be a positive integer`);
  if (o['publish'] !== undefined) cfg.publish = validatePublishSettings(o['publish'], source);
  if (o['dashboard'] !== undefined) cfg.dashboard = validateDashboardSettings(o['dashboard'], source);
  if (o['metrics'] !== undefined) cfg.metrics = validateMetricsSettings(o['metrics'], source);
  if (o['services'] !== undefined) cfg.services = validateServices(o['services'], source);
  if (o['cluster'] !== undefined) {
    try {
      cfg.cluster = parseClusterOptions(o['cluster']);
    } catch (err) {
      bad((err as Error).message); // names the field: "cluster.servers[1]: ..."
    }
    checkClusterLogLimits(cfg.publish ?? DEFAULT_PUBLISH_SETTINGS, source);
  }
  if (cfg.secretsDir !== undefined && (typeof cfg.secretsDir !== 'string' || cfg.secretsDir === '')) bad('"secretsDir" must be a directory path');
  if (o['limits'] !== undefined) cfg.limits = validateLimits(o['limits'], source);
  return cfg;
}

export async function loadHubConfig(file: string): Promise<HubConfig> {
  const raw = await readJsonFile(file, () => new BentoError('FLEET_NOT_INITIALIZED', `${file} not found; run \`bento-hub init --dir DIR\` first`));
  return validateHubConfig(raw, file);
}

// Kept here too: callers have always imported them from hub.json's module.
export { isHostPort, parseHostPort } from './host-port.js';
