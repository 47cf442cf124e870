// HTML for the hub dashboard and the agent's local page: auto-escaping
// templates (anything interpolated is escaped unless it is already SafeHtml),
// small formatting helpers, and the one stylesheet both pages share.

/** HTML that is already escaped; anything else interpolated into `html` is escaped. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function renderValue(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(renderValue).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

/** Tagged template: html`<td>${name}</td>` escapes `name`; nested html`` and arrays of it are kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += renderValue(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** `<time>` with a machine-readable datetime; the page's script shows it relative ("3 min ago"). */
export function timeTag(iso: string | null | undefined, empty = '–'): SafeHtml {
  if (!iso) return html`${empty}`;
  return html`<time datetime="${iso}" title="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One stylesheet for both pages: readable, high contrast, light and dark. */
export const BASE_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --run: #0969da; --focus: #0969da; --new: #1b7c83; --never: #8250df; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #30363d; --head: #161b22;
  --ok: #3fb950; --bad: #f85149; --warn: #d29922; --run: #58a6ff; --focus: #58a6ff; --new: #39c5cf; --never: #a371f7; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--run); }
header.top { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--head); }
header.top .brand { font-weight: 700; font-size: 1.1rem; text-decoration: none; color: var(--fg); }
header.top nav a { margin-right: .8rem; }
main { padding: 1rem 1.2rem 3rem; max-width: 110rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
.nowrap, time, a[href*="/jobs/"] { white-space: nowrap; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; border: 1px solid currentColor; font-size: .85em; white-space: nowrap; }
.s-ok { color: var(--ok); } .s-bad { color: var(--bad); } .s-warn { color: var(--warn); } .s-run { color: var(--run); } .s-off { color: var(--muted); }
.s-new { color: var(--new); } .s-never { color: var(--never); } .badge.s-never { border-style: dashed; } .badge.s-off { border-style: dotted; }
.s-none { color: var(--fg); } .badge.s-none { border-color: var(--line); }
button, select { font: inherit; padding: .25rem .7rem; border-radius: .35rem; border: 1px solid var(--line); background: var(--head); color: var(--fg); cursor: pointer; }
button.primary { background: var(--run); border-color: var(--run); color: #fff; font-weight: 600; padding: .5rem 1.2rem; font-size: 1.05rem; }
button:disabled { opacity: .55; cursor: progress; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
form.inline { display: inline-flex; gap: .3rem; margin: 0; }
pre.output { background: #0d1117; color: #e6edf3; padding: .8rem; border-radius: .4rem; max-height: 32rem; overflow: auto; white-space: pre-wrap; word-break: break-word; font-size: .85rem; margin: .4rem 0; }
pre.output .err { color: #ffa198; }
pre.output .note { color: #8b949e; font-style: italic; }
.panel { border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .9rem; margin: .8rem 0; }
.panel h3 { margin: 0 0 .3rem; font-size: 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.live { font-size: .85rem; }
dialog.confirm { max-width: min(32rem, calc(100vw - 2rem)); border: 1px solid var(--line); border-radius: .5rem; color: var(--fg); background: var(--bg); padding: 1rem 1.2rem; }
dialog.confirm::backdrop { background: rgba(0, 0, 0, .45); }
dialog.confirm h2 { margin: 0 0 .5rem; }
dialog.confirm .buttons { display: flex; gap: .6rem; flex-wrap: wrap; margin-bottom: 0; }
/* Narrow screens: each row of a .stack table becomes a card, one labelled value per line, so nothing runs off sideways. */
@media (max-width: 44rem) {
  main { padding: .8rem .7rem 2rem; }
  table.stack, table.stack tbody, table.stack tr, table.stack th, table.stack td { display: block; width: auto; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { border: 1px solid var(--line); border-radius: .4rem; margin: .5rem 0; padding: .3rem .6rem; }
  table.stack tr[hidden] { display: none; }
  table.stack th, table.stack td { border: 0; padding: .15rem 0; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font: .8rem/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  table.stack td:empty { display: none; }
  dl.facts { grid-template-columns: minmax(0, max-content) minmax(0, 1fr); }
}
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
