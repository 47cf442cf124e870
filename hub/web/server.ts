// The hub's web side: starts what hub.json asks for, the dashboard
// (dashboard.ts) and the Prometheus endpoint, each on its own listener behind
// the request guard of guard.ts: Host header (DNS rebinding), Origin on
// anything that changes state (CSRF), token (when set). Triggers go through
// the admin API's own handler, so the dashboard can do nothing the admin
// socket cannot, and does it the same way.
import type http from 'node:http';
import path from 'node:path';
import { send, sendText } from '../../common/platform/web.js';
import type { OriginPolicy } from '../../common/platform/web-origin.js';
import { PROMETHEUS_CONTENT_TYPE } from '../../common/platform/prometheus.js';
import type { HubConfig } from '../fleet/hub-config.js';
import { bindListener } from '../fleet/host-port.js';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { loadOrCreateToken, tokenAuth, tokenPath, type TokenAuth } from './auth.js';
import { Dashboard, type DashboardDeps } from './dashboard.js';
import { closeServer, guarded, listen } from './guard.js';

/** The dashboard's dependencies are all the web side needs (metrics take the read model and the bus). */
export type WebDeps = DashboardDeps;

export interface RunningWeb {
  /** http(s)://HOST:PORT of the dashboard, or null when it is off. */
  dashboardUrl: string | null;
  metricsUrl: string | null;
  metrics: HubMetrics;
  close(): Promise<void>;
}

/** Start what hub.json asks for: the dashboard, the metrics endpoint, both or neither. */
export async function startWeb(config: HubConfig, deps: WebDeps): Promise<RunningWeb> {
  const servers: http.Server[] = [];
  const closers: Array<() => void> = [];
  if (config.dashboard || config.metrics) {
    // Host states exactly as `bento-hub status` derives them (the same read
    // model). The published versions (one small file per host, written by
    // `bento-hub deploy`) are read ahead and re-read every 10 s.
    const { registry, published } = deps.sources;
    const hosts = (): string[] => Object.keys(registry.snapshot.hosts);
    await published.refresh(hosts());
    const timer = setInterval(() => { published.refresh(hosts()).catch(() => undefined); }, 10_000);
    timer.unref();
    closers.push(() => clearInterval(timer));
  }
  const metrics = new HubMetrics({ sources: deps.sources, bus: deps.bus });
  let dashboardUrl: string | null = null;
  let metricsUrl: string | null = null;
  const refused = metrics.registry.counter('bento_web_refused_total', 'Dashboard and metrics requests refused, by reason (host, origin, auth).');
  try {
    if (config.dashboard) {
      const d = config.dashboard;
      const auth = await loadAuth(deps, d.tokenFile, true);
      const dash = new Dashboard(deps, metrics);
      closers.push(() => dash.close());
      // Without a token only loopback names pass the Host check (DNS rebinding);
      // with one, a rebinding page has no credentials, so the check is only
      // applied when allowedHosts narrows it down.
      const policy: OriginPolicy | null = auth && d.allowedHosts.length === 0 ? null : { allowedHosts: d.allowedHosts, loopbackPort: 'any' };
      const { server, url } = await bindListener('dashboard.listen', d.listen, () => listen(d.listen, d.tls ? { cert: resolve(deps.fleetDir, d.tls.cert), key: resolve(deps.fleetDir, d.tls.key) } : null,
        guarded(deps.log, auth, refused, policy, dash.handle)));
      servers.push(server);
      dashboardUrl = url;
      deps.log.info({ url, auth: auth ? `token in ${auth.file}` : 'none (loopback only)' }, 'dashboard serving');
    }
    if (config.metrics) {
      const m = config.metrics;
      const auth = await loadAuth(deps, m.tokenFile, false);
      const { server, url } = await bindListener('metrics.listen', m.listen, () => listen(m.listen, null, guarded(deps.log, auth, refused, auth ? null : { allowedHosts: [], loopbackPort: 'any' }, (_req, res, u) => {
        if (u.pathname !== '/metrics') return sendText(res, 404, 'only /metrics here');
        send(res, 200, PROMETHEUS_CONTENT_TYPE, metrics.render());
      })));
      servers.push(server);
      metricsUrl = `${url}/metrics`;
      deps.log.info({ url: metricsUrl }, 'metrics serving');
    }
  } catch (err) {
    closers.forEach((c) => c());
    await Promise.all(servers.map(closeServer));
    throw err;
  }
  return {
    dashboardUrl,
    metricsUrl,
    metrics,
    async close() {
      closers.forEach((c) => c());
      await Promise.all(servers.map(closeServer));
    },
  };
}

function resolve(fleetDir: string, p: string): string {
  return path.isAbsolute(p) ? p : path.join(fleetDir, p);
}

async function loadAuth(deps: WebDeps, file: string | null, create: boolean): Promise<TokenAuth | null> {
  if (file === null) return null;
  const p = tokenPath(deps.fleetDir, file);
  const { token, created } = await loadOrCreateToken(p, create);
  if (created) deps.log.info({ file: p }, 'created a new web token (log in with any user name and this token as the password)');
  return tokenAuth(p, token);
}
