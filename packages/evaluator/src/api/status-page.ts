/**
 * The evaluator's status page (`GET /`, `GET /status`): one self-contained
 * HTML document — no external asset, works offline — that polls
 * `/api/v1/status` every 2 s and renders system status, business impact and
 * technical checks as accessible tables, with status in words (PASS, FAIL,
 * DEGRADED), not only in colour. Its inline style and script are allowed by
 * SHA-256 hashes in {@link STATUS_PAGE_CSP}; nothing else may load.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f5f6f8; color: #1a1a1a; font-size: 15px; line-height: 1.4; }
header { background: #1d2733; color: #fff; padding: 12px 24px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { margin: 0; font-size: 1.5rem; }
#summary { margin: 0; font-size: 1rem; }
main { padding: 8px 24px 32px; max-width: 1500px; }
h2 { font-size: 1.3rem; margin: 24px 0 8px; border-bottom: 2px solid #1d2733; padding-bottom: 4px; }
h3 { font-size: 1.1rem; margin: 16px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 720px), 1fr)); gap: 16px; align-items: start; }
.grid > * { min-width: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 0 0 12px; }
caption { text-align: left; font-weight: 600; padding: 6px 0; font-size: 1rem; }
th, td { border: 1px solid #c9ced6; padding: 4px 8px; text-align: left; vertical-align: top; }
/* A reason quotes paths and module names with no break in them: let them wrap. */
.reason { overflow-wrap: anywhere; }
th { background: #e8ebf0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
.badge { display: inline-block; min-width: 4.5em; text-align: center; font-weight: 700; border-radius: 3px; padding: 0 6px; font-size: 0.85rem; letter-spacing: 0.02em; }
.ok { background: #1e6b34; color: #fff; }
.bad { background: #b3261e; color: #fff; }
.warn { background: #7a4d00; color: #fff; }
.muted { background: #e8ebf0; color: #333; }
.empty { color: #444; font-style: italic; margin: 4px 0 12px; }
.error { background: #b3261e; color: #fff; padding: 8px 24px; margin: 0; }
.hidden { display: none; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  function el(tag, attrs) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]); }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === undefined || c === null || c === false) continue;
      n.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return n;
  }
  function badge(word, cls) { return el('span', { 'class': 'badge ' + cls }, word); }
  var WORD = { PASS: 'ok', OK: 'ok', YES: 'ok', LIVE: 'ok', REPORTING: 'ok', HEALTHY: 'ok', RESOLVED: 'ok',
    FAIL: 'bad', FAILED: 'bad', NO: 'bad', SILENT: 'bad', FIRING: 'bad', FAILING: 'bad', 'NO RUNNING INSTANCE': 'bad',
    DEGRADED: 'warn', STALE: 'warn', PENDING: 'warn', QUEUED: 'warn' };
  function status(word) { return badge(word, WORD[word] || 'muted'); }
  function time(v) {
    if (v === undefined || v === null) return '\\u2014';
    var d = new Date(v);
    return isNaN(d.getTime()) ? String(v) : d.toLocaleTimeString(undefined, { hour12: false });
  }
  function money(r) {
    if (!r) return '\\u2014';
    try { return new Intl.NumberFormat('en-GB', { style: 'currency', currency: r.currency, maximumFractionDigits: 0 }).format(r.amount); }
    catch (e) { return r.amount + ' ' + r.currency; }
  }
  function table(caption, headers, rows, emptyText) {
    if (!rows.length) return el('div', null, el('h3', null, caption), el('p', { 'class': 'empty' }, emptyText));
    var head = el('tr');
    headers.forEach(function (h) { head.appendChild(el('th', { scope: 'col' }, h)); });
    var body = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr');
      r.forEach(function (cell, i) {
        var numeric = cell && typeof cell === 'object' && cell.num;
        var v = numeric ? cell.v : cell;
        if (i === 0) tr.appendChild(el('th', { scope: 'row' }, v === '' ? '\\u2014' : v));
        else tr.appendChild(el('td', numeric ? { 'class': 'num' } : null, v === '' || v === undefined ? '\\u2014' : v));
      });
      body.appendChild(tr);
    });
    // Wrapped so that a wide table scrolls inside its column instead of covering the next one.
    return el('div', { 'class': 'scroll' }, el('table', null, el('caption', null, caption), el('thead', null, head), body));
  }
  function num(v) { return { num: true, v: v }; }

  /** All signals of a service, merged across instances by kind/component/subject (failing if any instance fails). */
  function signalsOf(svc) {
    var map = {};
    Object.keys(svc.components || {}).forEach(function (comp) {
      (svc.components[comp] || []).forEach(function (s) {
        var k = s.kind + '|' + s.component + '|' + s.subject;
        if (!map[k]) map[k] = { kind: s.kind, component: s.component, subject: s.subject, labels: s.labels || {}, failing: !!s.failing, unknown: !!s.unknown, reason: s.reason || '', instances: 1 };
        else { map[k].failing = map[k].failing || !!s.failing; map[k].unknown = map[k].unknown && !!s.unknown; map[k].reason = map[k].reason || s.reason || ''; map[k].instances++; }
      });
    });
    return Object.keys(map).sort().map(function (k) { return map[k]; });
  }
  // Why it fails, as the app said (text only: never markup).
  function reasonText(text) { return text ? el('span', { 'class': 'reason' }, text) : ''; }
  function why(s) { return s && s.failing ? reasonText(s.reason) : ''; }
  // A check that has not run yet is UNKNOWN, never PASS.
  function pf(s) { return status(s.failing ? 'FAIL' : s.unknown ? 'UNKNOWN' : 'PASS'); }

  function renderSystem(d) {
    var out = el('section', { 'aria-labelledby': 'h-system' }, el('h2', { id: 'h-system' }, 'System status'));
    if (!d.services.length) out.appendChild(el('p', { 'class': 'empty' }, 'No service has reported telemetry yet.'));
    d.services.forEach(function (svc) {
      var sigs = signalsOf(svc);
      out.appendChild(el('h3', null, 'Service ', el('code', null, svc.service), ' ', status(svc.silent ? 'SILENT' : svc.noInstance ? 'NO RUNNING INSTANCE' : 'REPORTING'),
        ' last seen ', time(svc.lastSeen)));
      var grid = el('div', { 'class': 'grid' });
      grid.appendChild(table('Instances of ' + svc.service, ['Instance', 'State', 'Last seen'],
        (svc.instances || []).map(function (i) { return [el('code', null, i.instance), status(i.live ? 'LIVE' : i.stopped ? 'STOPPED' : 'STALE'), time(i.lastSeen)]; }),
        'No instance.'));
      grid.appendChild(table('Router imports', ['Router', 'Component', 'Status', 'Error type', 'Reason'],
        sigs.filter(function (s) { return s.kind === 'import'; }).map(function (s) {
          return [el('code', null, s.labels['vigil.router'] || s.subject), s.component, status(s.failing ? 'FAILED' : 'OK'), s.labels['error.type'] || '', why(s)];
        }), 'No router import reported.'));
      var eps = {};
      sigs.forEach(function (s) {
        if ((s.kind !== 'route' && s.kind !== 'probe') || s.subject.indexOf('drift:') === 0) return;
        var e = eps[s.subject] || (eps[s.subject] = { subject: s.subject, component: s.component });
        if (s.kind === 'route') e.route = s; else e.probe = s;
      });
      var lat = {};
      (svc.latencies || []).forEach(function (l) { if (l.recentMs !== undefined) lat[l.method + ' ' + l.route] = l.recentMs; });
      grid.appendChild(table('Endpoint availability', ['Route', 'Method', 'Component', 'Registered', 'Probe', 'Probe latency', 'Reason'],
        Object.keys(eps).sort().map(function (k) {
          var e = eps[k]; var sp = k.indexOf(' ');
          var method = e.route ? e.route.labels['http.request.method'] : k.slice(0, sp);
          var route = e.route ? e.route.labels['http.route'] : k.slice(sp + 1);
          return [el('code', null, route), method, e.component,
            e.route ? status(e.route.failing ? 'NO' : 'YES') : '',
            e.probe ? pf(e.probe) : 'not probed',
            lat[method + ' ' + route] !== undefined ? lat[method + ' ' + route] + ' ms' : '—', why(e.route) || why(e.probe)];
        }), 'No route reported.'));
      grid.appendChild(table('Dependency health', ['Dependency', 'Component', 'Status', 'Policy', 'Reason'],
        sigs.filter(function (s) { return s.kind === 'dependency' && s.subject.indexOf('dependency:') === 0; }).map(function (s) {
          var name = s.subject.slice('dependency:'.length);
          var startup = sigs.filter(function (t) { return t.kind === 'dependency' && t.component === s.component && t.subject.indexOf('dependency:') !== 0; })[0];
          var policy = startup ? startup.labels['vigil.policy'] : undefined;
          return [el('code', null, name), s.component, status(s.failing ? (policy === 'degrade' ? 'DEGRADED' : 'FAIL') : s.unknown ? 'UNKNOWN' : 'PASS'), policy || '', why(s)];
        }), 'No dependency check reported.'));
      out.appendChild(grid);
    });
    return out;
  }

  function renderBusiness(d) {
    var out = el('section', { 'aria-labelledby': 'h-business' }, el('h2', { id: 'h-business' }, 'Business impact'));
    out.appendChild(table('Active alerts', ['Component', 'State', 'Impact', 'Priority', 'Revenue at risk', 'Customers affected', 'Business context', 'Escalation level', 'Since', 'Service', 'Rule', 'Why'],
      d.alerts.map(function (a) {
        var i = a.impact || {};
        return [a.component || '(service)', status(String(a.state).toUpperCase()), i.level, i.priority, num(money(i.revenue)), i.customers,
          i.context ? (a.contextHeadline ? i.context + ': ' + a.contextHeadline : i.context) : '', num(a.escalationLevel), time(a.firedAt || a.since), a.service, a.rule,
          reasonText((a.signals || []).filter(function (s) { return s.reason; }).map(function (s) { return s.kind + ' ' + s.subject + ': ' + s.reason; }).join('; '))];
      }), 'No active alert: every business flow is PASS.'));
    return out;
  }

  function renderTechnical(d) {
    var out = el('section', { 'aria-labelledby': 'h-technical' }, el('h2', { id: 'h-technical' }, 'Technical detail'));
    var startup = [], runtime = [];
    d.services.forEach(function (svc) {
      signalsOf(svc).forEach(function (s) {
        if (s.kind === 'startup' || (s.kind === 'dependency' && s.subject.indexOf('dependency:') !== 0)) startup.push([svc.service, s]);
        else if (['flow', 'error_rate', 'process', 'integration'].indexOf(s.kind) >= 0 || (s.kind === 'route' && s.subject.indexOf('drift:') === 0)) runtime.push([svc.service, s]);
      });
    });
    var grid = el('div', { 'class': 'grid' });
    grid.appendChild(table('Startup validation', ['Check', 'Kind', 'Component', 'Type', 'Policy', 'Result', 'Service', 'Reason'],
      startup.map(function (p) { var s = p[1];
        return [el('code', null, s.subject), s.kind, s.component, s.labels['vigil.check.type'] || '', s.labels['vigil.policy'] || '',
          status(s.failing ? (s.labels['vigil.policy'] === 'degrade' ? 'DEGRADED' : 'FAIL') : 'PASS'), p[0], why(s)]; }),
      'No startup validation reported.'));
    grid.appendChild(table('Runtime checks', ['Check', 'Kind', 'Component', 'Level', 'Result', 'Service', 'Reason'],
      runtime.map(function (p) { var s = p[1];
        return [el('code', null, s.subject), s.kind === 'route' ? 'route drift' : s.kind, s.component, s.labels['vigil.level'] || '', pf(s), p[0], why(s)]; }),
      'No runtime check reported.'));
    out.appendChild(grid);
    out.appendChild(table('Notification history (latest first)', ['Time', 'Status', 'Component', 'Severity', 'Priority', 'Escalation', 'Summary'],
      d.history.slice().reverse().map(function (h) { var l = h.labels || {};
        return [time(h.at), status(String(h.status).toUpperCase()), l.component, l.severity, l.priority, num(l.escalation), h.summary]; }),
      'No notification sent yet.'));
    out.appendChild(table('Notifier health', ['Notifier', 'Type', 'Status', 'Sent', 'Failed', 'Queued', 'Last success', 'Last error'],
      d.notifiers.map(function (n) {
        var word = n.lastError && n.queued > 0 ? 'FAILING' : n.failed > 0 ? 'DEGRADED' : 'HEALTHY';
        return [n.name, n.type, status(word), num(n.sent), num(n.failed), num(n.queued), time(n.lastSuccessAt), n.lastError || ''];
      }), 'No notifier configured.'));
    var src = d.source || {};
    out.appendChild(el('p', null, 'Telemetry source: ', el('code', null, src.type || 'unknown'),
      src.type === 'otlp' ? ' \\u2014 ' + src.requests + ' OTLP requests, ' + src.rejected + ' rejected, last received ' + time(src.lastReceivedAt)
        : ' \\u2014 ' + (src.up ? 'up' : 'down') + (src.lastError ? ': ' + src.lastError : '')));
    return out;
  }

  var root = document.getElementById('root');
  var summary = document.getElementById('summary');
  var errorBox = document.getElementById('error');
  function refresh() {
    fetch('api/v1/status', { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (d) {
        var firing = d.alerts.filter(function (a) { return a.state === 'firing'; }).length;
        var silent = d.services.filter(function (s) { return s.silent || s.noInstance; }).length;
        var overall = firing || silent ? 'FAIL' : d.alerts.length ? 'DEGRADED' : 'PASS';
        summary.textContent = '';
        summary.appendChild(document.createTextNode('Overall: '));
        summary.appendChild(status(overall));
        summary.appendChild(document.createTextNode(' ' + d.alerts.length + ' active alert' + (d.alerts.length === 1 ? '' : 's') +
          ', ' + d.services.length + ' service' + (d.services.length === 1 ? '' : 's') + '. Updated ' + time(Date.now()) + ', refreshes every 2 s.'));
        var next = el('div', null, renderSystem(d), renderBusiness(d), renderTechnical(d));
        root.replaceChildren(next);
        root.setAttribute('aria-busy', 'false');
        errorBox.className = 'error hidden';
      })
      .catch(function (e) {
        errorBox.textContent = 'Could not load /api/v1/status: ' + (e && e.message ? e.message : e) + ' \\u2014 showing the last data received.';
        errorBox.className = 'error';
      })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** Only the page's own inline style and script, and fetches to this origin. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil status</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Vigil status</h1>
<p id="summary" role="status" aria-live="polite">Loading /api/v1/status…</p>
</header>
<p id="error" class="error hidden" role="alert"></p>
<main id="root" aria-busy="true"><p class="empty">Waiting for the first status update…</p></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
