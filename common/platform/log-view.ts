// A job's output as both web pages show it (the hub's job page and trigger
// panels, the host's local page): one row per line with its number, the time
// the line was stored, and the text; the rebuild's stderr, Bento's own notes
// and error lines each look different, so a green job no longer reads like a
// failure. Server-rendered here (works without JavaScript); the shared script
// (web-script.ts) appends live lines the same way, and adds follow and copy.
import type { OutputStream } from '../protocol/messages.js';
import { html, type SafeHtml } from './web-html.js';

/** One line of output as the pages get it (the hub's OutputLine has the same fields). */
export interface LogLine {
  /** 1, 2, 3, ... per job: the line number shown and its anchor (#L12). */
  seq: number;
  /** When it was stored, ms since the epoch; null for lines from before timestamps were kept. */
  ts: number | null;
  stream: OutputStream;
  data: string;
}

/**
 * Lines that report an error: nix's "error: ..." (evaluation, a failed
 * builder), a "fatal:" line, systemd's "Failed to start UNIT" and
 * switch-to-configuration's "the following units failed". A heuristic on
 * purpose: it only decides what is highlighted, never an outcome. Bento's own
 * notes never count: they are not the rebuild's words. The browser script
 * uses the same source text.
 */
export const ERROR_LINE_SOURCE = String.raw`^\s*(?:error|fatal)\b|\bFailed to start\b|the following units failed`;
const ERROR_LINE = new RegExp(ERROR_LINE_SOURCE, 'i');

export function isErrorLine(l: Pick<LogLine, 'stream' | 'data'>): boolean {
  return l.stream !== 'note' && ERROR_LINE.test(l.data);
}

/** "12:03:04" in UTC for the server-rendered page (the script shows local time). */
function clock(ts: number): string {
  return new Date(ts).toISOString().slice(11, 19);
}

const STREAM_CLASS: Record<OutputStream, string> = { stdout: 'o-out', stderr: 'o-err', note: 'o-note' };

export function logLineHtml(l: LogLine, firstError: boolean): SafeHtml {
  const err = isErrorLine(l);
  const cls = `ln ${STREAM_CLASS[l.stream]}${err ? ' error' : ''}${firstError ? ' first-error' : ''}`;
  const iso = l.ts !== null ? new Date(l.ts).toISOString() : null;
  return html`<div class="${cls}" id="L${l.seq}" data-seq="${l.seq}"><a class="num" href="#L${l.seq}" aria-label="line ${l.seq}">${l.seq}</a>${iso
    ? html`<time class="t" datetime="${iso}" title="${iso}">${clock(l.ts!)}</time>`
    : html`<span class="t"></span>`}<span class="x">${l.data}</span></div>`;
}

export function logLinesHtml(lines: LogLine[]): SafeHtml {
  const first = lines.find(isErrorLine)?.seq ?? null;
  return html`${lines.map((l) => logLineHtml(l, l.seq === first))}`;
}

export interface LogViewOptions {
  /** The id of the lines' container (tests and the script find it by id). */
  id: string;
  label: string;
  lines: LogLine[];
  /** A short note shown above the lines (earlier lines only in the full log, ...). */
  note?: string | null;
  /** More lines may come: offer Follow (with JavaScript). */
  live?: boolean;
}

/**
 * The whole view: a toolbar (the first error, a legend, and, with JavaScript,
 * Follow and Copy) and the lines.
 */
export function logViewHtml(o: LogViewOptions): SafeHtml {
  const first = o.lines.find(isErrorLine) ?? null;
  return html`<div class="logview" data-log="${o.id}">
<div class="log-tools">
<a class="first-error-link"${first ? html` href="#L${first.seq}"` : html` hidden`}>First error: line <span class="first-error-n">${first?.seq ?? ''}</span></a>
<span class="legend muted"><span class="k-e">stderr</span> <span class="k-n">bento</span> <span class="k-error">error</span></span>
${o.live ? html`<label class="js-only" hidden><input type="checkbox" class="follow" checked> Follow</label>` : ''}
<button type="button" class="copy js-only" hidden>Copy</button>
<span class="copy-status muted" role="status" aria-live="polite"></span>
</div>
${o.note ? html`<p class="muted log-note">${o.note}</p>` : ''}
<div class="log" id="${o.id}" role="log" aria-label="${o.label}" tabindex="0">${logLinesHtml(o.lines)}</div>
</div>`;
}

/** The view's styles (both pages): a dark terminal-like panel; stderr marked in the gutter, notes and errors set apart. */
export const LOG_CSS = `
.logview { margin: .4rem 0; min-width: 0; }
.log-tools { display: flex; flex-wrap: wrap; gap: .4rem .9rem; align-items: center; font-size: .85rem; margin: .2rem 0 .3rem; }
.log-tools .first-error-link { color: var(--bad); font-weight: 600; }
.legend span { display: inline-block; padding: 0 .35rem; border-left: 3px solid transparent; white-space: nowrap; }
.legend .k-e { border-left-color: #6e7681; } .legend .k-n { border-left-color: #388bfd; font-style: italic; } .legend .k-error { border-left-color: #f85149; }
.log { background: #0d1117; color: #e6edf3; border-radius: .4rem; max-height: 32rem; overflow: auto; font: .82rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; padding: .4rem 0; }
.log .ln { display: grid; grid-template-columns: max-content max-content minmax(0, 1fr); column-gap: .6rem; padding: 0 .6rem 0 0; border-left: 3px solid transparent; }
.log .num { color: #6e7681; text-align: right; min-width: 3ch; padding-left: .4rem; text-decoration: none; user-select: none; }
.log .num:hover { color: #e6edf3; text-decoration: underline; }
.log .t { color: #6e7681; user-select: none; }
.log .x { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 0; }
.log .o-err { border-left-color: #6e7681; }
.log .o-note { background: rgba(56, 139, 253, .08); border-left-color: #388bfd; }
.log .o-note .x { color: #79c0ff; font-style: italic; }
.log .error { border-left-color: #f85149; }
.log .error .x { color: #ffa198; }
.log .first-error { background: rgba(248, 81, 73, .18); }
.log .ln:target { background: rgba(187, 128, 9, .3); }
.log .page-note .x { color: #8b949e; font-style: italic; }
`;
