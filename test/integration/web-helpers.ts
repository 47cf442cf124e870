// Helpers for the web tests (test/integration/web-*.test.ts, test/browser/):
// raw HTTP requests with exact Host / Origin headers (fetch cannot set Host),
// over TCP or a unix socket, and a reader for server-sent events.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { readSse, type SseEvent } from '../../common/platform/web-sse.js';

export interface HttpResult { status: number; headers: http.IncomingHttpHeaders; body: string }

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | object;
  /** Unix socket instead of TCP. */
  socketPath?: string;
  /** CA certificate for https:// URLs. */
  ca?: string | Buffer;
  timeoutMs?: number;
}

function open(url: string, opts: RequestOptions): Promise<http.IncomingMessage> {
  const u = new URL(url);
  const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const headers: Record<string, string> = {
    ...(body !== undefined && typeof opts.body === 'object' ? { 'Content-Type': 'application/json' } : {}),
    ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
    ...(opts.headers ?? {}),
  };
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https : http).request({
      // The certificate is checked against the URL's host, not the (maybe forged) Host header.
      ...(opts.ca ? { ca: opts.ca, checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(u.hostname, cert) } : {}),
      ...(opts.socketPath ? { socketPath: opts.socketPath } : { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port }),
      method: opts.method ?? (body !== undefined ? 'POST' : 'GET'),
      path: `${u.pathname}${u.search}`,
      headers,
      timeout: opts.timeoutMs ?? 10_000,
    }, resolve);
    req.once('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.once('error', reject);
    req.end(body);
  });
}

export async function request(url: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const res = await open(url, opts);
  let body = '';
  res.setEncoding('utf8');
  for await (const c of res as AsyncIterable<string>) body += c;
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

export function basic(token: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` };
}

/** Read an event stream until `until` says stop (or the server ends it, or the timeout). */
export async function collectSse(url: string, until: (e: SseEvent, all: SseEvent[]) => boolean, opts: RequestOptions = {}): Promise<{ status: number; events: SseEvent[] }> {
  const res = await open(url, { ...opts, timeoutMs: opts.timeoutMs ?? 30_000 });
  const events: SseEvent[] = [];
  if (res.statusCode !== 200) {
    res.resume();
    return { status: res.statusCode ?? 0, events };
  }
  const timer = setTimeout(() => res.destroy(), opts.timeoutMs ?? 30_000);
  try {
    for await (const e of readSse(res)) {
      events.push(e);
      if (until(e, events)) break;
    }
  } catch { /* destroyed by the timeout */ } finally {
    clearTimeout(timer);
    res.destroy();
  }
  return { status: 200, events };
}

/** A rebuild command for tests: prints $LINES numbered lines $PAUSE s apart (1 s for the action $SLOW_ACTION), exits with $FAIL (default 0). */
export const SCRIPTED_REBUILD = [
  '/bin/sh', '-c',
  'echo "rebuild $1"; [ "$1" = "${SLOW_ACTION:-none}" ] && PAUSE=1; i=1; while [ $i -le ${LINES:-4} ]; do echo "step $i/${LINES:-4}"; i=$((i+1)); sleep ${PAUSE:-0.2}; done; echo "done, warnings: none" >&2; exit ${FAIL:-0}',
  'rebuild',
];

/**
 * A rebuild stand-in that does to a system profile what matters to the
 * hub's job records: `switch` and `boot` make generation N+1 (DIR/system-N-link)
 * and point the profile (and, for switch, DIR/current-system) at it. It talks
 * on both streams like nixos-rebuild. The action in $FAIL_ACTION prints nix
 * errors and fails; the one in $SLOW_ACTION takes 3 s; the one in
 * $CHATTY_ACTION prints $LINES numbered lines $PAUSE s apart.
 */
export const PROFILE_REBUILD = ['/bin/sh', '-c', [
  'set -e; act="$1"; d="$PROFILE_DIR"',
  'echo "building the system configuration..." >&2',
  'if [ "$act" = "${SLOW_ACTION:-none}" ]; then if [ -n "${GATE_FILE:-}" ]; then i=0; while [ ! -e "$GATE_FILE" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; else sleep 3; fi; fi',
  'if [ "$act" = "${CHATTY_ACTION:-none}" ]; then i=1; while [ $i -le ${LINES:-50} ]; do echo "copying path $i of ${LINES:-50}"; if [ -n "${STOP_FILE:-}" ] && [ -e "$STOP_FILE" ]; then break; fi; i=$((i+1)); sleep ${PAUSE:-0.05}; done; fi',
  'if [ "$act" = "${FAIL_ACTION:-none}" ]; then echo "these 2 derivations will be built:" >&2; echo "error: builder for \'/nix/store/aaaa-etc.drv\' failed with exit code 1" >&2; echo "error: 1 dependencies of derivation failed" >&2; exit 1; fi',
  'if [ "$act" = switch ] || [ "$act" = boot ]; then',
  '  n=$(readlink "$d/system" | sed -e "s/^system-//" -e "s/-link$//"); n=$((n+1))',
  '  mkdir -p "$d/sys-$n"; ln -sfn "sys-$n" "$d/system-$n-link"; ln -sfn "system-$n-link" "$d/system"',
  '  if [ "$act" = switch ]; then ln -sfn "$d/system-$n-link" "$d/current-system"; fi',
  'fi',
  'echo "activating the configuration... ($act)"',
].join('\n'), 'rebuild'];

/** A system profile at generation 1 in `dir`, and the agent settings that rebuild it with PROFILE_REBUILD. */
export async function makeProfile(dir: string, env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  await mkdir(path.join(dir, 'sys-1'), { recursive: true });
  await symlink('sys-1', path.join(dir, 'system-1-link'));
  await symlink('system-1-link', path.join(dir, 'system'));
  await symlink(path.join(dir, 'system-1-link'), path.join(dir, 'current-system'));
  return {
    rebuildCommand: PROFILE_REBUILD, systemProfile: path.join(dir, 'system'), currentSystem: path.join(dir, 'current-system'),
    rebuildEnv: { PROFILE_DIR: dir, ...env },
  };
}
