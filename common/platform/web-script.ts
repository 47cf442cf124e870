// The browser-side script both pages share, as plain ES2017 text served from
// the page's own origin (the CSP allows no inline script). No framework and
// no build step: what is here is what the browser runs.
import { ERROR_LINE_SOURCE } from './log-view.js';

export const SHARED_SCRIPT = String.raw`
'use strict';
var bento = (function () {
  function ago(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return null;
    var s = Math.round((Date.now() - t) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var txt = s < 5 ? 'just now' : s < 60 ? s + ' s' : s < 3600 ? Math.floor(s / 60) + ' min' : s < 86400 ? Math.floor(s / 3600) + ' h' : Math.floor(s / 86400) + ' d';
    if (txt === 'just now') return txt;
    return future ? 'in ' + txt : txt + ' ago';
  }
  function relTimes(root) {
    var els = (root || document).querySelectorAll('time[datetime]:not(.t)');
    for (var i = 0; i < els.length; i++) {
      var r = ago(els[i].getAttribute('datetime'));
      if (r) els[i].textContent = r;
    }
  }
  setInterval(function () { relTimes(); }, 10000);
  document.addEventListener('DOMContentLoaded', function () { relTimes(); });

  function setLive(text) {
    var el = document.getElementById('live');
    if (el) el.textContent = text;
  }

  // ---- job logs (common/platform/log-view.ts renders the same rows on the server)
  var ERROR_LINE = new RegExp(${JSON.stringify(ERROR_LINE_SOURCE)}, 'i');
  var STREAM_CLASS = { stdout: 'o-out', stderr: 'o-err', note: 'o-note' };
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function clock(ts) { var d = new Date(ts); return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()); }
  function localTimes(root) {
    var els = root.querySelectorAll('time.t[datetime]');
    for (var i = 0; i < els.length; i++) {
      var t = Date.parse(els[i].getAttribute('datetime'));
      if (!isNaN(t)) { els[i].textContent = clock(t); els[i].title = new Date(t).toString(); }
    }
  }
  function logOf(el) { return el.classList.contains('log') ? el : el.querySelector('.log'); }
  function viewOf(el) { return el.closest ? el.closest('.logview') : null; }
  function markFirstError(log, row) {
    if (log.querySelector('.first-error')) return;
    row.classList.add('first-error');
    var view = viewOf(log);
    var link = view && view.querySelector('.first-error-link');
    if (!link) return;
    link.href = '#' + row.id;
    link.querySelector('.first-error-n').textContent = row.getAttribute('data-seq');
    link.hidden = false;
  }
  function following(log) {
    var view = viewOf(log);
    var box = view && view.querySelector('input.follow');
    if (!box) return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    // Scrolled up since a line last pulled the view down, its scroll event not dispatched yet (it comes
    // with the next frame): that pauses too. Else this line pulled the view back down, the event then
    // found it at the end, and with lines arriving faster than frames a scroll up never paused.
    var at = Number(log.getAttribute('data-at'));
    if (box.checked && log.hasAttribute('data-at') && log.scrollTop < at - 40) box.checked = false;
    return box.checked;
  }
  function toEnd(log) {
    log.scrollTop = log.scrollHeight;
    log.setAttribute('data-at', String(log.scrollTop));
  }
  // One line {seq, ts, stream, data}; a page note (no seq) when cls is "page-note".
  function appendLine(el, d, cls) {
    var log = logOf(el);
    var follow = following(log);
    var row = document.createElement('div');
    var isErr = !cls && d.stream !== 'note' && ERROR_LINE.test(d.data);
    row.className = 'ln ' + (cls || STREAM_CLASS[d.stream] || 'o-out') + (isErr ? ' error' : '');
    var num = document.createElement(d.seq ? 'a' : 'span');
    num.className = 'num';
    if (d.seq) {
      row.id = 'L' + d.seq;
      row.setAttribute('data-seq', d.seq);
      num.href = '#L' + d.seq;
      num.textContent = d.seq;
      num.setAttribute('aria-label', 'line ' + d.seq);
    }
    var t = document.createElement(d.ts ? 'time' : 'span');
    t.className = 't';
    if (d.ts) { t.setAttribute('datetime', new Date(d.ts).toISOString()); t.textContent = clock(d.ts); t.title = new Date(d.ts).toString(); }
    var x = document.createElement('span');
    x.className = 'x';
    x.textContent = d.data;
    row.appendChild(num); row.appendChild(t); row.appendChild(x);
    log.appendChild(row);
    if (isErr) markFirstError(log, row);
    if (follow) toEnd(log);
  }
  function resetLog(el) {
    var log = logOf(el);
    log.textContent = '';
    log.removeAttribute('data-at');
    var view = viewOf(log);
    var link = view && view.querySelector('.first-error-link');
    if (link) { link.hidden = true; link.removeAttribute('href'); }
  }
  function logText(log) {
    var xs = log.querySelectorAll('.ln:not(.page-note) .x'), out = [];
    for (var i = 0; i < xs.length; i++) out.push(xs[i].textContent);
    return out.join('\n') + (out.length ? '\n' : '');
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.style.position = 'fixed'; ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      ta.remove();
      if (ok) resolve(); else reject(new Error('the browser refused to copy'));
    });
  }
  // Follow (keep the newest line in view; scrolling up pauses it) and Copy.
  function initLog(view) {
    if (!view || view.getAttribute('data-ready')) return;
    view.setAttribute('data-ready', 'yes');
    var log = view.querySelector('.log');
    var hidden = view.querySelectorAll('.js-only');
    for (var i = 0; i < hidden.length; i++) hidden[i].hidden = false;
    localTimes(log);
    var box = view.querySelector('input.follow');
    if (box) {
      toEnd(log);
      box.addEventListener('change', function () { if (box.checked) toEnd(log); });
      // Only a scroll moves scrollTop (new lines do not): scrolled away from the end pauses, back to it resumes.
      log.addEventListener('scroll', function () {
        box.checked = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      }, { passive: true });
    }
    var btn = view.querySelector('button.copy');
    var status = view.querySelector('.copy-status');
    if (btn) btn.addEventListener('click', function () {
      var text = logText(log);
      var n = log.querySelectorAll('.ln:not(.page-note)').length;
      copyText(text).then(function () { status.textContent = 'Copied ' + n + ' lines.'; },
        function (err) { status.textContent = 'Not copied: ' + (err && err.message ? err.message : err); });
    });
  }
  // The same view as log-view.ts renders, for output that starts streaming into a page (a trigger's panel).
  function newLogView(label) {
    var view = document.createElement('div');
    view.className = 'logview';
    view.innerHTML = '<div class="log-tools"><a class="first-error-link" hidden>First error: line <span class="first-error-n"></span></a>'
      + ' <span class="legend muted"><span class="k-e">stderr</span> <span class="k-n">bento</span> <span class="k-error">error</span></span>'
      + ' <label class="js-only" hidden><input type="checkbox" class="follow" checked> Follow</label>'
      + ' <button type="button" class="copy js-only" hidden>Copy</button> <span class="copy-status muted" role="status" aria-live="polite"></span></div>'
      + '<div class="log" role="log" tabindex="0"></div>';
    view.querySelector('.log').setAttribute('aria-label', label);
    initLog(view);
    return view;
  }
  document.addEventListener('DOMContentLoaded', function () {
    var views = document.querySelectorAll('.logview');
    for (var i = 0; i < views.length; i++) initLog(views[i]);
  });

  function fmtDuration(ms) {
    if (ms == null) return '';
    if (ms < 1000) return ms + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  // A job's end as one line: "failed (exit 1) in 3.2 s: reason".
  function endText(d) {
    var t = d.outcome + (d.exitCode != null ? ' (exit ' + d.exitCode + ')' : '') + (d.durationMs != null ? ' in ' + fmtDuration(d.durationMs) : '');
    return d.reason ? t + ': ' + d.reason : t;
  }

  function jobLink(id) {
    var a = document.createElement('a');
    a.className = 'mono';
    a.href = '/jobs/' + encodeURIComponent(id);
    a.textContent = id;
    return a;
  }

  // Follow one job's output stream into a log view: "line", "note", "started", "end" events.
  function follow(url, el, onEvent) {
    var es = new EventSource(url);
    var done = false;
    es.addEventListener('reset', function () { resetLog(el); });
    es.addEventListener('line', function (m) { appendLine(el, JSON.parse(m.data)); });
    es.addEventListener('note', function (m) { var d = JSON.parse(m.data); appendLine(el, { stream: 'note', data: d.text }, 'page-note'); });
    es.addEventListener('started', function (m) { if (onEvent) onEvent('started', JSON.parse(m.data)); });
    es.addEventListener('end', function (m) { done = true; es.close(); if (onEvent) onEvent('end', JSON.parse(m.data)); });
    es.addEventListener('gone', function (m) { done = true; es.close(); if (onEvent) onEvent('gone', JSON.parse(m.data)); });
    es.onerror = function () { if (done) es.close(); };
    return es;
  }

  // Generic live page updates: "replace" swaps an element, "row" inserts,
  // replaces or removes one table row kept sorted by data-key.
  function fromHtml(text) {
    var t = document.createElement('template');
    t.innerHTML = text.trim();
    return t.content.firstElementChild;
  }
  // Keep what the user is doing (a chosen option, the focus) across a swap.
  function swap(old, n) {
    var active = document.activeElement && old.contains(document.activeElement) ? document.activeElement.id : null;
    var selects = old.querySelectorAll('select[id]');
    for (var i = 0; i < selects.length; i++) {
      var twin = n.querySelector('#' + CSS.escape(selects[i].id));
      if (twin) twin.value = selects[i].value;
    }
    old.replaceWith(n);
    if (active) { var f = document.getElementById(active); if (f) f.focus(); }
  }
  function applyReplace(d) {
    var el = document.getElementById(d.id);
    if (!el) return;
    var n = fromHtml(d.html);
    if (n) { swap(el, n); relTimes(n.parentNode || document); }
  }
  function applyRow(d) {
    var tbody = document.getElementById(d.tbody);
    if (!tbody) return;
    var old = document.getElementById(d.id);
    if (d.html === null) { if (old) old.remove(); return; }
    var n = fromHtml(d.html);
    if (!n) return;
    // Same place: swap in place. A new sort key (the host's state changed): take it out and insert it where it now belongs.
    if (old && old.getAttribute('data-key') === d.key) { swap(old, n); }
    else {
      if (old) { var focus = old.contains(document.activeElement) ? document.activeElement.id : null; swap(old, n); n.remove(); if (focus) n.setAttribute('data-refocus', focus); }
      var rows = tbody.children, before = null;
      for (var i = 0; i < rows.length; i++) {
        var k = rows[i].getAttribute('data-key');
        if (k !== null && k > d.key) { before = rows[i]; break; }
      }
      tbody.insertBefore(n, before);
      var again = n.getAttribute('data-refocus');
      if (again) { n.removeAttribute('data-refocus'); var f = document.getElementById(again); if (f) f.focus(); }
    }
    relTimes(n);
  }
  function live(url, onAny) {
    var es = new EventSource(url);
    es.onopen = function () { setLive('Live'); };
    es.onerror = function () { setLive('Reconnecting…'); };
    es.addEventListener('replace', function (m) { var d = JSON.parse(m.data); applyReplace(d); if (onAny) onAny('replace', d); });
    es.addEventListener('row', function (m) { var d = JSON.parse(m.data); applyRow(d); if (onAny) onAny('row', d); });
    return es;
  }

  // A modal question before something that changes a machine (a switch from the web).
  // Resolves true only on the OK button; Escape, Cancel or a click outside say no.
  function confirmDialog(o) {
    return new Promise(function (resolve) {
      var d = document.createElement('dialog');
      d.className = 'confirm';
      d.setAttribute('aria-labelledby', 'confirm-title');
      var h = document.createElement('h2'); h.id = 'confirm-title'; h.textContent = o.title;
      var p = document.createElement('p'); p.textContent = o.text;
      var row = document.createElement('p'); row.className = 'buttons';
      var ok = document.createElement('button'); ok.type = 'button'; ok.className = 'primary'; ok.textContent = o.ok || 'OK';
      var no = document.createElement('button'); no.type = 'button'; no.textContent = o.cancel || 'Cancel';
      row.appendChild(ok); row.appendChild(no);
      d.appendChild(h); d.appendChild(p); d.appendChild(row);
      var answered = false;
      var back = document.activeElement;
      function answer(yes) {
        if (answered) return;
        answered = true;
        d.close();
        d.remove();
        if (back && back.focus && document.contains(back)) back.focus();
        resolve(yes);
      }
      ok.addEventListener('click', function () { answer(true); });
      no.addEventListener('click', function () { answer(false); });
      d.addEventListener('cancel', function (e) { e.preventDefault(); answer(false); });
      d.addEventListener('click', function (e) { if (e.target === d) answer(false); });
      document.body.appendChild(d);
      d.showModal();
      no.focus();
    });
  }

  return { confirmDialog: confirmDialog, relTimes: relTimes, appendLine: appendLine, resetLog: resetLog, initLog: initLog, newLogView: newLogView, follow: follow, live: live, setLive: setLive, fmtDuration: fmtDuration, endText: endText, jobLink: jobLink };
})();
`;
