// The NixOS modules' pure parts, checked against the daemons: every .nix
// file parses; render.nix, checks.nix and defaults.nix evaluate with a bare
// nix-instantiate; the rendered example configs go through the agent's and
// the hub's real loaders, so a module option can never drift from the code;
// the option tree (from the REAL module system, nixos/tests/option-paths.nix)
// and the examples cover each other. What the modules build under the module
// system is nixos-eval.test.ts. Fails (never skips) without nix-instantiate or
// the nixpkgs lib (nixos-nix.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { validateClientConfig } from '../../client/config.js';
import { validateHubConfig, DEFAULT_HUB_CONFIG } from '../../hub/fleet/hub-config.js';
import { DEFAULT_PUBLISH_SETTINGS } from '../../hub/publish/settings.js';
import { isLoopbackHost } from '../../common/platform/web-origin.js';
import { ROOT, nixEval, type Json, type Obj } from './nixos-nix.js';

const PRELUDE = `
  pure = import ./nixos/lib/pure.nix;
  client = { render = import ./nixos/modules/client/render.nix; checks = import ./nixos/modules/client/checks.nix; ex = import ./nixos/examples/client-settings.nix; };
  hub = { render = import ./nixos/modules/hub/render.nix; checks = import ./nixos/modules/hub/checks.nix; ex = import ./nixos/examples/hub-settings.nix; };
  optionPaths = m: (import ./nixos/tests/option-paths.nix { inherit libDir; which = m; }).visible;
  run = m: builtins.mapAttrs (_: cfg: { json = m.render cfg; failures = pure.failures (m.checks cfg); }) m.ex;`;

function nixFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', '.git', '.test-artifacts'].includes(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...nixFiles(p));
    else if (e.name.endsWith('.nix')) out.push(p);
  }
  return out;
}

// Free-form option values: keys without an option of their own may appear
// below them (checked by the loaders instead).
const FREEFORM = new Set(['settings']);
// hub.json keys set through the free-form part of services.bento.hub.settings
// (none: publish, dashboard, metrics, services and secretsDir are typed now).
const HUB_FREEFORM_KEYS: string[] = [];

/** Option-style paths of an example value: "backoff.initialMs", "endpoints.*.url". */
function examplePaths(v: Obj, known: Set<string>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const p = prefix ? `${prefix}.${k}` : k;
    const hasChildren = [...known].some((o) => o.startsWith(`${p}.`));
    if (!known.has(p) && FREEFORM.has(prefix)) continue;
    if (known.has(p)) out.push(p);
    else if (!hasChildren) { out.push(p); continue; } // unknown: reported by the caller
    if (!hasChildren || x === null) continue;
    if (Array.isArray(x)) for (const el of x) out.push(...examplePaths(el as Obj, known, `${p}.*`));
    else if (typeof x === 'object') out.push(...examplePaths(x, known, p));
  }
  return out;
}

// Options that shape the units rather than the JSON config.
const MODULE_ONLY = {
  client: ['enable', 'package', 'settings', 'pullInterval', 'pullRandomizedDelay', 'extraPackages', 'logLevel', 'checkConfig'],
  hub: ['enable', 'package', 'dataDir', 'user', 'group', 'openFirewall', 'onion.enable', 'onion.port', 'hostKeyFile', 'logLevel', 'checkConfig', 'clusterSweep.enable', 'clusterSweep.onCalendar', 'clusterSweep.minAge'],
};

test('every .nix file in the repository parses (nix-instantiate --parse)', () => {
  const files = nixFiles(ROOT);
  for (const must of ['flake.nix', 'nixos/package.nix', 'nixos/tests/vm.nix', 'nixos/modules/hub/default.nix', 'nixos/modules/client/default.nix']) {
    assert.ok(files.includes(path.join(ROOT, must)), `${must} exists`);
  }
  for (const f of files) {
    const r = spawnSync('nix-instantiate', ['--store', 'dummy://', '--parse', f], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${path.relative(ROOT, f)}: ${r.stderr}`);
  }
});

test('client examples pass the module assertions and the agent loader, and reach the JSON', () => {
  const res = nixEval(`let ${PRELUDE} in { out = run client; ex = client.ex; }`) as { out: Record<string, { json: Obj; failures: string[] }>; ex: Record<string, Obj> };
  assert.ok(Object.keys(res.out).length >= 3);
  for (const [name, { json, failures }] of Object.entries(res.out)) {
    assert.deepEqual(failures, [], `${name}: assertions`);
    const cfg = validateClientConfig(json, `example ${name}`);
    const ex = res.ex[name]!;
    for (const [k, v] of Object.entries(ex)) {
      if (MODULE_ONLY.client.includes(k) || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) continue;
      assert.ok(k in json, `${name}: option "${k}" is set but render.nix drops it`);
    }
    assert.equal(cfg.endpoints.length, (ex['hub'] ? 1 : 0) + ((ex['endpoints'] as Json[] | undefined)?.length ?? 0), `${name}: endpoints`);
  }
  const roaming = validateClientConfig(res.out['roaming']!.json);
  assert.deepEqual(roaming.endpoints.map((e) => e.proxy?.kind ?? (e.proxyCommand ? 'command' : 'direct')), ['direct', 'http', 'command', 'socks5h']);
  assert.equal(validateClientConfig(res.out['tor-only']!.json).systemProfile, '/nix/var/nix/profiles/system', 'settings are merged');
  const managed = validateClientConfig(res.out['managed']!.json);
  assert.deepEqual(managed.cache, { localPort: 5001, service: 'cache' }, 'cache.publicKey stays in the module');
  assert.equal(managed.pull.autoApplyAction, 'boot');
  assert.equal(managed.rebootMethod, 'kexec', 'rebootMethod reaches the agent config');
  assert.deepEqual(managed.localPage, { listen: null, socket: '/run/bento-client/local.sock', socketGroup: 'wheel', metrics: false });
  const migrating = validateClientConfig(res.out['migrating']!.json);
  assert.equal(migrating.localPage, null, 'localPage = null turns the page off (not dropped as "unset")');
  assert.equal(migrating.pull.pullFrom?.endpoint.proxy?.kind, 'socks5h');
  assert.equal(migrating.rollback, false);
  assert.equal(managed.machineId, '4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c');
  assert.deepEqual(managed.postSwitch, { command: ['/run/current-system/sw/bin/logger', '-t', 'bento', 'switched'], timeoutMs: 10000 });
  assert.deepEqual(managed.health, { command: ['/run/current-system/sw/bin/systemctl', 'is-system-running', '--wait'], timeoutMs: 120000, intervalMs: 5000 });
});

test('hub examples pass the module assertions and the hub loader', () => {
  const res = nixEval(`let ${PRELUDE} in { out = run hub; ex = hub.ex; }`) as { out: Record<string, { json: Obj; failures: string[] }>; ex: Record<string, { settings: Obj }> };
  for (const [name, { json, failures }] of Object.entries(res.out)) {
    assert.deepEqual(failures, [], `${name}: assertions`);
    const cfg = validateHubConfig(json, `example ${name}`);
    for (const [k, v] of Object.entries(res.ex[name]!.settings)) {
      if (k === 'cluster' && v !== null) {
        // The loader fills the options the example leaves null with their defaults.
        const got = (cfg as unknown as Obj)[k] as Obj;
        const drop = (o: Obj): Obj => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== null).map(([key, x]) => [key, typeof x === 'object' && !Array.isArray(x) ? drop(x as Obj) : x]));
        for (const [ck, cv] of Object.entries(drop(v as Obj))) assert.deepEqual(got[ck], cv, `${name}: settings.cluster.${ck}`);
      } else if (!HUB_FREEFORM_KEYS.includes(k)) assert.deepEqual((cfg as unknown as Obj)[k], v, `${name}: settings.${k}`);
    }
  }
  assert.deepEqual(validateHubConfig(res.out['minimal']!.json), DEFAULT_HUB_CONFIG);
});

test('option trees, examples and docs/nixos-options.md cover each other (no option unused, undocumented, or missing)', () => {
  for (const m of ['client', 'hub'] as const) {
    const r = nixEval(`let ${PRELUDE} in { opts = optionPaths "${m}"; ex = ${m}.ex; }`) as { opts: string[]; ex: Record<string, Obj> };
    const known = new Set(r.opts);
    const used = new Set(Object.values(r.ex).flatMap((e) => examplePaths(e, known)));
    for (const p of used) assert.ok(known.has(p), `${m}: example key "${p}" is not an option of services.bento.${m}`);
    for (const p of known) {
      if (p === 'package') continue;
      assert.ok(used.has(p), `${m}: option "${p}" is used by no example in nixos/examples/${m}-settings.nix`);
    }
    for (const p of MODULE_ONLY[m]) assert.ok(known.has(p), `${m}: MODULE_ONLY lists "${p}", which is no option`);
    const doc = readFileSync(path.join(ROOT, 'docs/nixos-options.md'), 'utf8');
    for (const p of known) assert.ok(doc.includes(`## \`services.bento.${m}.${p}\`\n`), `docs/nixos-options.md lacks services.bento.${m}.${p}: run npm run docs:nixos`);
  }
});

test('module defaults are the daemons\' defaults', () => {
  const d = nixEval('{ hub = import ./nixos/modules/hub/defaults.nix; client = import ./nixos/modules/client/defaults.nix; }') as { hub: { settings: Obj; publish: Obj; dashboard: Obj; metrics: Obj }; client: Obj };
  for (const [k, v] of Object.entries(DEFAULT_HUB_CONFIG)) {
    if (HUB_FREEFORM_KEYS.includes(k)) continue;
    assert.ok(k in d.hub.settings, `hub.json key "${k}" has no typed option in nixos/modules/hub/options.nix (add one, or list it in HUB_FREEFORM_KEYS and docs/nixos.md)`);
    assert.deepEqual(d.hub.settings[k], v, `hub default ${k}`);
  }
  for (const k of Object.keys(d.hub.settings)) assert.ok(k in DEFAULT_HUB_CONFIG, `module default for unknown hub.json key "${k}"`);
  const c = validateClientConfig({ name: 'web1', hub: 'ssh://hub:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}` }) as unknown as Obj;
  for (const k of ['identityFile', 'stateDir', 'allowForwardPorts', 'connectTimeoutMs', 'backoff', 'currentSystem', 'systemProfile',
    'rollback', 'rollbackTimeoutMs', 'localPage', 'secretsDir', 'rebootOnKernelChange', 'rebootCommand', 'rebootMethod']) {
    assert.deepEqual(d.client[k], c[k], `client default ${k}`);
  }
  const pull = c['pull'] as Obj;
  for (const k of ['autoApply', 'autoApplyAction', 'pullIntervalMs', 'logUpload', 'flakeUpdateIntervalMs', 'flakeUpdateCommand']) {
    assert.deepEqual(d.client[k], pull[k], `client default ${k}`);
  }
  const withHook = validateClientConfig({ name: 'web1', hub: 'ssh://hub:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}`, postSwitchCommand: ['true'] });
  assert.equal(d.client['postSwitchTimeoutMs'], withHook.postSwitch?.timeoutMs, 'client default postSwitchTimeoutMs');
  const withCache = validateClientConfig({ name: 'web1', hub: 'ssh://hub:2222', hubFingerprint: `SHA256:${'A'.repeat(43)}`, cache: { localPort: 5001 } });
  assert.equal(d.client['cacheService'], withCache.cache?.service, 'client default cache.service');
  const { buildJobs: _cpuDependent, ...publish } = DEFAULT_PUBLISH_SETTINGS;
  assert.deepEqual(d.hub.publish, publish, 'hub publish defaults (buildJobs: the hub\'s own)');
  const sections = validateHubConfig({ dashboard: {}, metrics: {} });
  assert.deepEqual(d.hub.dashboard, sections.dashboard, 'hub dashboard defaults');
  assert.deepEqual(d.hub.metrics, sections.metrics, 'hub metrics defaults');
});

test('a wrong rendering is refused by the real loaders (the check can fail)', () => {
  const r = nixEval(`let ${PRELUDE}
    j = client.render client.ex.direct;
    h = hub.render hub.ex.full;
  in {
    typo = builtins.removeAttrs j [ "hubFingerprint" ] // { hubFingerPrint = j.hubFingerprint; };
    extra = client.render (client.ex.direct // { settings = { autoApplly = true; }; });
    hubTypo = builtins.removeAttrs h [ "listen" ] // { listn = h.listen; };
  }`) as Record<string, Obj>;
  assert.throws(() => validateClientConfig(r['typo']), /unknown setting "hubFingerPrint"/);
  assert.throws(() => validateClientConfig(r['extra']), /unknown setting "autoApplly"/);
  assert.throws(() => validateHubConfig(r['hubTypo']), /unknown setting "listn"/);
});

// Each mistake must be caught by the module's assertion (with a message
// naming the option) AND by the loader, so the two cannot disagree.
const CLIENT_MISTAKES: Array<[string, string, RegExp]> = [
  ['flake without #', 'client.ex.direct // { flake = "/etc/nixos"; }', /flake = "\/etc\/nixos" must be "PATH#ATTRIBUTE"/],
  ['flake and configuration', 'client.ex.direct // { configuration = "/etc/nixos/configuration.nix"; }', /flake or .*configuration, not both/],
  ['onion without proxy', 'client.ex.direct // { hub = "ssh://abc.onion:2222"; }', /Tor onion address; set proxy = "socks5h:/],
  ['onion over socks5', 'client.ex.direct // { hub = "ssh://abc.onion:2222"; proxy = "socks5://127.0.0.1:9050"; }', /onion address/],
  ['top-level proxy without hub', 'client.ex.tor-only // { proxy = "http://p:3128"; }', /apply to services\.bento\.client\.hub, which is null/],
  ['bad fingerprint', 'client.ex.direct // { hubFingerprint = "abc"; }', /bento-hub fingerprint/],
  ['bad name', 'client.ex.direct // { name = "Web_1"; }', /is not a DNS label/],
  ['no hub at all', 'builtins.removeAttrs client.ex.direct [ "hub" ]', /Set services\.bento\.client\.hub/],
  ['http scheme', 'client.ex.direct // { hub = "http://hub.example"; }', /is not a hub URL/],
  ['proxy and proxyCommand', 'client.ex.direct // { proxy = "http://p:3128"; proxyCommand = "nc %h %p"; }', /proxy or proxyCommand, not both/],
  ['bad proxy scheme', 'client.ex.direct // { endpoints = [ { url = "ssh://h:1"; proxy = "ftp://p"; } ]; }', /must be socks5h/],
  ['credentials in URL', 'client.ex.direct // { hub = "ssh://root:pw@hub:2222"; }', /carries credentials/],
  ['empty rebuildCommand', 'client.ex.direct // { rebuildCommand = [ ]; }', /non-empty argv/],
  ['backoff inverted', 'client.ex.direct // { backoff = { initialMs = 5000; maxMs = 100; }; }', /maxMs >= initialMs/],
  ['pullIntervalMs below 100', 'client.ex.direct // { pullIntervalMs = 50; }', /pullIntervalMs = 50: use 0/],
  ['relative configDir', 'client.ex.direct // { configDir = "config"; }', /configDir and .*secretsDir must be absolute/],
  ['relative secretsDir', 'client.ex.direct // { secretsDir = "secrets"; }', /secretsDir must be absolute/],
  ['empty rebootCommand', 'client.ex.direct // { rebootCommand = [ ]; }', /rebootCommand and .*flakeUpdateCommand must be non-empty/],
  ['empty flakeUpdateCommand', 'client.ex.direct // { flakeUpdateCommand = [ ]; }', /flakeUpdateCommand must be non-empty/],
  ['local page on a public address', 'client.ex.direct // { localPage = { listen = "0.0.0.0:51337"; }; }', /localPage\.listen = "0\.0\.0\.0:51337" must be a loopback address/],
  ['local socket relative', 'client.ex.direct // { localPage = { socket = "local.sock"; }; }', /localPage\.socket must be an absolute path/],
  ['local socket bad group', 'client.ex.direct // { localPage = { socketGroup = "wheel group"; }; }', /socketGroup = "wheel group" must be a group name/],
  ['cache bad service', 'client.ex.direct // { cache = { localPort = 5001; service = "Cache"; }; }', /cache\.service = "Cache" must name a hub service/],
  ['pullFrom over http', 'client.ex.direct // { pullFrom = { url = "http://old:22"; hostFingerprint = client.ex.direct.hubFingerprint; }; }', /pullFrom\.url = "http:\/\/old:22" must be ssh:/],
  ['pullFrom bad fingerprint', 'client.ex.direct // { pullFrom = { url = "ssh://old:22"; hostFingerprint = "abc"; }; }', /pullFrom\.hostFingerprint must be/],
  ['pullFrom bad user', 'client.ex.direct // { pullFrom = { url = "ssh://old:22"; user = "a b"; hostFingerprint = client.ex.direct.hubFingerprint; }; }', /pullFrom\.user = "a b" is not a user name/],
  ['pullFrom onion without proxy', 'client.ex.direct // { pullFrom = { url = "ssh://abc.onion:22"; hostFingerprint = client.ex.direct.hubFingerprint; }; }', /pullFrom: ssh:\/\/abc\.onion:22 is a Tor onion address/],
];
const HUB_MISTAKES: Array<[string, string, RegExp]> = [
  ['listen not HOST:PORT', 'hub.ex.minimal // { settings = { listen = "2222"; }; }', /settings\.listen = "2222" must be HOST:PORT/],
  ['wsListen not HOST:PORT', 'hub.ex.minimal // { settings = { wsListen = "localhost"; }; }', /settings\.wsListen/],
  ['wsPath relative', 'hub.ex.minimal // { settings = { wsPath = "bento"; }; }', /must start with "\/"/],
  ['tls half set', 'hub.ex.minimal // { settings = { tls = { cert = "/c.pem"; }; }; }', /settings\.tls needs absolute cert and key/],
  ['dashboard not HOST:PORT', 'hub.ex.minimal // { settings = { dashboard = { listen = "8080"; }; }; }', /settings\.dashboard\.listen = "8080" must be HOST:PORT/],
  ['dashboard public without token', 'hub.ex.minimal // { settings = { dashboard = { listen = "0.0.0.0:8080"; tokenFile = null; }; }; }', /dashboard\.listen = "0\.0\.0\.0:8080" is not loopback, so it needs authentication/],
  ['metrics public without token', 'hub.ex.minimal // { settings = { metrics = { listen = "[::]:9180"; }; }; }', /set services\.bento\.hub\.settings\.metrics\.tokenFile/],
  ['dashboard bad allowedHosts', 'hub.ex.minimal // { settings = { dashboard = { allowedHosts = [ "a b" ]; }; }; }', /dashboard\.allowedHosts must be Host header values/],
  ['service bad name', 'hub.ex.minimal // { settings = { services = { Cache = "127.0.0.1:5000"; }; }; }', /settings\.services: names must be lower-case/],
  ['service bad target', 'hub.ex.minimal // { settings = { services = { cache = "5000"; }; }; }', /every target must be "HOST:PORT"/],
  ['publish empty buildCommand', 'hub.ex.minimal // { settings = { publish = { buildCommand = [ ]; }; }; }', /publish\.buildCommand and \.flakeHostsCommand must be non-empty/],
  ['secretsDir empty', 'hub.ex.minimal // { settings = { secretsDir = ""; }; }', /settings\.secretsDir must be a directory path/],
];

test('module assertions and loaders refuse the same mistakes, and the assertion names the option', () => {
  const list = (cases: Array<[string, string, RegExp]>, m: string): string =>
    `[ ${cases.map(([, e]) => `(let cfg = ${e}; in { json = ${m}.render cfg; failures = pure.failures (${m}.checks cfg); })`).join(' ')} ]`;
  const r = nixEval(`let ${PRELUDE} in { client = ${list(CLIENT_MISTAKES, 'client')}; hub = ${list(HUB_MISTAKES, 'hub')}; }`) as Record<'client' | 'hub', Array<{ json: Obj; failures: string[] }>>;
  CLIENT_MISTAKES.forEach(([what, , msg], i) => {
    const { json, failures } = r.client[i]!;
    assert.ok(failures.some((f) => msg.test(f)), `${what}: expected an assertion matching ${msg}, got ${JSON.stringify(failures)}`);
    assert.ok(failures.every((f) => f.includes('services.bento.client')), `${what}: messages name the option`);
    assert.throws(() => validateClientConfig(json), `${what}: the agent must refuse it too`);
  });
  HUB_MISTAKES.forEach(([what, , msg], i) => {
    const { json, failures } = r.hub[i]!;
    assert.ok(failures.some((f) => msg.test(f)), `${what}: expected an assertion matching ${msg}, got ${JSON.stringify(failures)}`);
    assert.throws(() => validateHubConfig(json), `${what}: the hub must refuse it too`);
  });
});

test('pure helpers agree with the TypeScript parsers', () => {
  const addrs = ['0.0.0.0:2222', '[::1]:22', 'hub.example:2222', 'nope', 'h:99999', '[::]:0080', 'a b:1'];
  const r = nixEval(`map (a: (import ./nixos/lib/pure.nix).isHostPort a) ${JSON.stringify(addrs).replace(/,/g, ' ')}`) as boolean[];
  addrs.forEach((a, i) => {
    let ok = true;
    try { validateHubConfig({ listen: a }); } catch { ok = false; }
    assert.equal(r[i], ok, a);
  });  const hosts = ['127.0.0.1', '127.1.2.3', 'localhost', 'LocalHost', '::1', '[::1]', '::ffff:127.0.0.1', '0.0.0.0', '::', 'hub.example', '128.0.0.1'];
  const l = nixEval(`map (import ./nixos/lib/pure.nix).isLoopback ${JSON.stringify(hosts).replace(/,/g, ' ')}`) as boolean[];
  hosts.forEach((h, i) => assert.equal(l[i], isLoopbackHost(h), `isLoopback ${h}`));
});
