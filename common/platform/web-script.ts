// The browser-side script both pages share, as plain ES2017 text served from
// the page's own origin (the CSP allows no inline script). No framework and
// no build step: what is here is what the browser runs.
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
    var els = (root || document).querySelectorAll('time[datetime]');
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

  function appendLine(pre, stream, data, cls) {
    var nearBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    var span = document.createElement('span');
    if (cls) span.className = cls;
    else if (stream === 'stderr') span.className = 'err';
    span.textContent = data + '\n';
    pre.appendChild(span);
    if (nearBottom) pre.scrollTop = pre.scrollHeight;
  }

  function fmtDuration(ms) {
    if (ms == null) return '';
    if (ms < 1000) return ms + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  // Follow one job's output stream: "line", "note", "started", "end" events.
  function follow(url, pre, onEvent) {
    var es = new EventSource(url);
    var done = false;
    es.addEventListener('reset', function () { pre.textContent = ''; });
    es.addEventListener('line', function (m) { var d = JSON.parse(m.data); appendLine(pre, d.stream, d.data); });
    es.addEventListener('note', function (m) { var d = JSON.parse(m.data); appendLine(pre, 'stderr', d.text, 'note'); });
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
    if (old) { swap(old, n); }
    else {
      var rows = tbody.children, before = null;
      for (var i = 0; i < rows.length; i++) {
        var k = rows[i].getAttribute('data-key');
        if (k !== null && k > d.key) { before = rows[i]; break; }
      }
      tbody.insertBefore(n, before);
    }
    relTimes(n);
  }
  function live(url, onAny) {
    var es = new EventSource(url);
    es.onopen = function () { setLive('Live'); };
    es.onerror = function () { setLive('Reconnecting…'); };
    es.addEventListener('replace', function (m) { applyReplace(JSON.parse(m.data)); if (onAny) onAny(); });
    es.addEventListener('row', function (m) { applyRow(JSON.parse(m.data)); if (onAny) onAny(); });
    return es;
  }

  return { relTimes: relTimes, appendLine: appendLine, follow: follow, live: live, setLive: setLive, fmtDuration: fmtDuration };
})();
`;
