// The dashboard's rollout panel (docs/web.md): running and halted rollouts
// on the fleet page, one line each with a progress bar, kept current over the
// page's event stream. Read only: starting, resuming and aborting stay with
// `bento-hub rollout` (the admin socket). The panel is always in the page,
// hidden while there is nothing to show, so a "replace" can fill it in.
import { html, timeTag, type SafeHtml } from '../../common/platform/web-html.js';
import type { SseStream } from '../../common/platform/web-sse.js';
import { rolloutLine, type RolloutSummary } from '../../common/protocol/rollout.js';

/** What the panel needs of the hub's rollouts (hub/rollout/engine.ts, store.ts). */
export interface RolloutSource {
  active(): RolloutSummary[];
  /** Called on every rollout change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void;
}

const BADGE: Record<string, string> = { running: 's-run', halted: 's-bad' };

function rolloutHtml(r: RolloutSummary): SafeHtml {
  const c = r.counts;
  const next = r.state === 'halted' ? html`<p class="muted">Resume: <code>bento-hub rollout resume ${r.id}</code> (add <code>--retry-failed</code> to run the failed hosts again) · abort: <code>bento-hub rollout abort ${r.id}</code></p>` : '';
  return html`<li class="rollout" data-id="${r.id}">
<strong class="mono">${r.id}</strong> <span class="badge ${BADGE[r.state] ?? 's-off'}">${r.state}</span> ${r.action} · ${rolloutLine(r)} · started ${timeTag(r.createdAt)}
<progress max="${r.hosts}" value="${c.healthy + c.failed + c.skipped}" aria-label="${r.id}: ${c.healthy + c.failed + c.skipped} of ${r.hosts} hosts had their turn">${c.healthy}/${r.hosts}</progress>
${r.reason ? html`<p class="${r.state === 'halted' ? 'err' : 'muted'}">${r.reason}</p>` : ''}${next}
</li>`;
}

export function rolloutPanelHtml(rs: RolloutSummary[]): SafeHtml {
  if (rs.length === 0) return html`<section id="rollouts" aria-labelledby="rollouts-h" hidden><h2 id="rollouts-h">Rollouts</h2></section>`;
  return html`<section id="rollouts" aria-labelledby="rollouts-h">
<h2 id="rollouts-h">Rollouts</h2>
<ul class="rollouts">${rs.map(rolloutHtml)}</ul>
</section>`;
}

/** Sends the panel to open fleet pages when it changes (debounced: a big wave changes many hosts a second). */
export class RolloutPanel {
  private readonly subs = new Set<SseStream>();
  private last = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly unwatch: () => void;

  constructor(private readonly src: RolloutSource, private readonly debounceMs = 250) {
    this.unwatch = src.onChange(() => this.changed());
  }

  html(): SafeHtml {
    return rolloutPanelHtml(this.src.active());
  }

  subscribe(sse: SseStream): void {
    this.subs.add(sse);
    sse.onClose(() => this.subs.delete(sse));
    this.last = this.html().value;
    sse.send('replace', { id: 'rollouts', html: this.last });
  }

  private changed(): void {
    if (this.subs.size === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = this.html().value;
      if (now === this.last) return;
      this.last = now;
      for (const s of this.subs) s.send('replace', { id: 'rollouts', html: now });
    }, this.debounceMs);
    this.timer.unref();
  }

  close(): void {
    this.unwatch();
    if (this.timer) clearTimeout(this.timer);
    this.subs.clear();
  }
}
