// The small pure pieces under the web pages: escaping templates, the Host /
// Origin rules, the Prometheus text format, the SSE parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { html } from '../../common/platform/web-html.js';
import { hostAllowed, originAllowed, foreignOrigin, isLoopbackHost } from '../../common/platform/web-origin.js';
import { readSse } from '../../common/platform/web-sse.js';
import { MetricsRegistry, parsePrometheusText } from '../../common/platform/prometheus.js';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers } as unknown as IncomingMessage);

test('html`` escapes every interpolated value, keeps nested templates, drops null/false', () => {
  const name = '<img src=x onerror="alert(1)">&\'';
  const out = html`<td title="${name}">${name}${html`<b>${'&'}</b>`}${null}${false}${[html`<i>1</i>`, '<2>']}</td>`.value;
  assert.equal(out, '<td title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;<b>&amp;</b><i>1</i>&lt;2&gt;</td>');
});

test('Host rules: loopback names pass (on the port asked for), other names only when listed', () => {
  assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('127.8.9.10') && isLoopbackHost('[::1]') && isLoopbackHost('LOCALHOST'));
  assert.ok(!isLoopbackHost('127.0.0.1.nip.io') && !isLoopbackHost('localhost.evil.example') && !isLoopbackHost('10.0.0.1'));
  const fixed = { allowedHosts: [], loopbackPort: 51337 };
  assert.ok(hostAllowed(req({ host: '127.0.0.1:51337' }), fixed));
  assert.ok(hostAllowed(req({ host: 'localhost:51337' }), fixed));
  assert.ok(!hostAllowed(req({ host: 'localhost:51338' }), fixed));
  assert.ok(!hostAllowed(req({ host: 'evil.example:51337' }), fixed));
  assert.ok(!hostAllowed(req({}), fixed), 'no Host header at all');
  assert.ok(!hostAllowed(req({ host: 'a b' }), fixed));
  const any = { allowedHosts: ['Hub.Example:8443'], loopbackPort: 'any' as const };
  assert.ok(hostAllowed(req({ host: 'localhost:9000' }), any));
  assert.ok(hostAllowed(req({ host: 'hub.example:8443' }), any));
  assert.ok(!hostAllowed(req({ host: 'hub.example:8444' }), any));
});

test('Origin rules: same origin or no browser for POST; any foreign Origin is refused', () => {
  const host = '127.0.0.1:51337';
  assert.ok(originAllowed(req({ host, origin: 'http://127.0.0.1:51337' })));
  assert.ok(originAllowed(req({ host })), 'curl: no Origin, no Sec-Fetch-Site');
  assert.ok(originAllowed(req({ host, 'sec-fetch-site': 'same-origin' })));
  assert.ok(!originAllowed(req({ host, 'sec-fetch-site': 'cross-site' })));
  assert.ok(!originAllowed(req({ host, origin: 'http://localhost:51337' })), 'another name is another origin');
  assert.ok(!originAllowed(req({ host, origin: 'null' })));
  assert.ok(!originAllowed(req({ host, origin: 'file://' })));
  assert.ok(!foreignOrigin(req({ host })));
  assert.ok(!foreignOrigin(req({ host, origin: 'https://127.0.0.1:51337' })));
  assert.ok(foreignOrigin(req({ host, origin: 'http://evil.example' })));
  assert.ok(foreignOrigin(req({ host, origin: 'null' })));
});

test('Prometheus text: HELP/TYPE, escaped labels, cumulative histogram buckets, a failing collector', () => {
  const r = new MetricsRegistry();
  const c = r.counter('x_total', 'A counter\nwith a newline.');
  c.inc({ path: 'a"b\\c\nd' });
  c.inc({ path: 'a"b\\c\nd' }, 2);
  const h = r.histogram('d_seconds', 'Durations.', [1, 5]);
  h.observe({ a: 'x' }, 0.5);
  h.observe({ a: 'x' }, 3);
  h.observe({ a: 'x' }, 9);
  r.gauge('g', 'Gauge.', () => [[{}, 7]]);
  r.gauge('broken', 'Broken.', () => { throw new Error('nope'); });
  const text = r.render();
  assert.match(text, /^# HELP x_total A counter\\nwith a newline\.$/m);
  assert.match(text, /^# TYPE d_seconds histogram$/m);
  assert.match(text, /^x_total\{path="a\\"b\\\\c\\nd"\} 3$/m);
  assert.match(text, /^# collecting broken failed: nope$/m);
  const m = parsePrometheusText(text);
  assert.equal(m.get('d_seconds_bucket{a="x",le="1"}'), 1);
  assert.equal(m.get('d_seconds_bucket{a="x",le="5"}'), 2);
  assert.equal(m.get('d_seconds_bucket{a="x",le="+Inf"}'), 3);
  assert.equal(m.get('d_seconds_sum{a="x"}'), 12.5);
  assert.equal(m.get('d_seconds_count{a="x"}'), 3);
  assert.equal(m.get('g'), 7);
  assert.throws(() => r.counter('x_total', 'again'), /registered twice/);
});

test('SSE parser: events, multi-line data, comments, CRLF', async () => {
  const body = Readable.from([': hello\n\nevent: line\ndata: {"a":1}\n\n', 'data: one\r\ndata: two\r\n\r\nevent: end\nda', 'ta: x\n\n']);
  const got = [];
  for await (const e of readSse(body)) got.push(e);
  assert.deepEqual(got, [{ event: 'line', data: '{"a":1}' }, { event: 'message', data: 'one\ntwo' }, { event: 'end', data: 'x' }]);
});
