// Checks run inside a page (Chromium, playwright-core) for the web tests: does
// anything run off sideways, is any word broken across two lines, is every job
// id on the page a link to its job.
import type { Page } from 'playwright-core';

/** The page's width against the window's, and the elements that stick out (for the message). */
export function overflow(page: Page): Promise<{ scrollWidth: number; clientWidth: number; culprits: string[] }> {
  return page.evaluate(() => {
    const root = document.documentElement;
    const w = root.clientWidth;
    const culprits: string[] = [];
    for (const el of Array.from(document.body.querySelectorAll('*'))) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > w + 1 && culprits.length < 8) culprits.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''} (right ${Math.round(r.right)})`);
    }
    return { scrollWidth: root.scrollWidth, clientWidth: w, culprits };
  });
}

/**
 * Words (runs of non-space characters) that the layout split over two or more
 * lines although they would fit on one line of their box: "g / en 41". A word
 * wider than its box (a store path on a phone) may break; that is what
 * overflow-wrap is for. In prose a break right after a hyphen is how compound
 * words wrap ("bento-" / "client"); in a value (monospace, a job link) it is not.
 */
export function brokenWords(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest('[hidden], .visually-hidden, script, style, option, select') || el.getClientRects().length === 0) continue;
      const box = el.closest('td, th, dd, dt, p, li, h1, h2, h3, div, label, span.x') ?? document.body;
      const room = box.getBoundingClientRect().width;
      const text = n.textContent ?? '';
      for (const m of text.matchAll(/\S+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index!);
        r.setEnd(n, m.index! + m[0].length);
        const rects = Array.from(r.getClientRects()).filter((x) => x.width > 0);
        const lines = new Set(rects.map((x) => Math.round(x.top)));
        if (lines.size < 2) continue;
        const width = rects.reduce((a, x) => a + x.width, 0);
        if (width > room - 1) continue;
        // Where the lines change inside the word: after a hyphen is fine in prose.
        const tops: number[] = [];
        for (let i = 0; i < m[0].length; i += 1) {
          const c = document.createRange();
          c.setStart(n, m.index! + i);
          c.setEnd(n, m.index! + i + 1);
          tops.push(Math.round(c.getBoundingClientRect().top));
        }
        const value = el.closest('.mono, a[href*="/jobs/"], code, time, .badge, .nowrap') !== null;
        const atHyphens = tops.every((t, i) => i === 0 || t === tops[i - 1] || m[0][i - 1] === '-');
        if (value || !atHyphens) out.push(`"${m[0]}" in ${box.tagName.toLowerCase()}${box.id ? `#${box.id}` : ''}`);
      }
    }
    return out;
  });
}

/** Job ids in the page's text (not in job output) that are not inside a link to their own job page. */
export function jobIdsNotLinked(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const ID = /(?<![\w-])(?:(?:local|pull|autoupdate)-)?[0-9a-hjkmnp-tv-z]{16}(?![\w-])/g;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest('.log, script, style, [hidden]')) continue;
      for (const m of (n.textContent ?? '').matchAll(ID)) {
        const a = el.closest('a');
        if (!a || !a.getAttribute('href')?.endsWith(`/jobs/${m[0]}`)) out.push(`${m[0]} in ${el.tagName.toLowerCase()}`);
      }
    }
    return out;
  });
}
