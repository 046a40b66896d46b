/**
 * Server-side HTML for the admin page: an `html` tagged template that escapes every interpolated
 * value unless it is already markup made by `html` itself, so escaping is the default and cannot
 * be forgotten. No templating dependency, no client framework, no external assets.
 */

export class Markup {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Markup) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(v);
}

/** html`<td>${text}</td>`: interpolations are escaped; nested html`` and arrays of it are kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Markup(out);
}

/** A path segment for a link (flow names may contain ':' and '.'). */
export const seg = (s: string) => encodeURIComponent(s);

/** "2026-03-01 10:00:00Z" */
export function fmtTime(d: Date | string | null | undefined): string {
  if (!d) return '—';
  const date = typeof d === 'string' ? new Date(d) : d;
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** "in 4m", "2h ago" relative to the database clock. */
export function fmtRelative(d: Date | null | undefined, now: Date): string {
  if (!d) return '';
  const s = Math.round((d.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(s);
  const text = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.floor(abs / 60)}m` : abs < 86400 ? `${Math.floor(abs / 3600)}h` : `${Math.floor(abs / 86400)}d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * A time in the viewer's local zone: rendered in UTC, rewritten by /admin/app.js to local time
 * (data-local) with the UTC time on hover. Without the script the UTC text stays.
 */
export function localTime(d: Date | string | null | undefined): Markup {
  if (!d) return html`<span class="muted">—</span>`;
  const date = typeof d === 'string' ? new Date(d) : d;
  return html`<time datetime="${date.toISOString()}" data-local title="${fmtTime(date)} UTC">${fmtTime(date)}</time>`;
}

export function when(d: Date | null | undefined, now: Date): Markup {
  if (!d) return html`<span class="muted">—</span>`;
  return html`<span class="when">${localTime(d)} <span class="muted">${fmtRelative(d, now)}</span></span>`;
}

const zoneFormats = new Map<string, { date: Intl.DateTimeFormat; names: Intl.DateTimeFormat[] }>();
/**
 * "2026-03-02 02:30:00 CET" in an IANA zone (a schedule's own), server-side. The zone's
 * abbreviation where a common locale has one (en-GB: CET, BST; en-US: EST, PST), else its offset
 * ("GMT+5:30").
 */
export function fmtZoned(d: Date, timeZone: string): string {
  let f = zoneFormats.get(timeZone);
  if (!f) {
    try {
      f = {
        date: new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }),
        names: ['en-GB', 'en-US'].map((l) => new Intl.DateTimeFormat(l, { timeZone, timeZoneName: 'short' })),
      };
    } catch {
      return fmtTime(d);
    }
    zoneFormats.set(timeZone, f);
  }
  const p = Object.fromEntries(f.date.formatToParts(d).map((x) => [x.type, x.value]));
  const names = f.names.map((n) => n.formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '');
  const name = names.find((n) => /^[A-Z]{2,5}$/.test(n)) ?? names[0];
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${name}`;
}

/** A schedule time in the schedule's zone (UTC on hover) and relative to the database clock. */
export function whenZoned(d: Date | null | undefined, timeZone: string, now: Date): Markup {
  if (!d) return html`<span class="muted">—</span>`;
  return html`<span class="when"><time datetime="${d.toISOString()}" data-zone="${timeZone}" title="${fmtTime(d)} UTC">${fmtZoned(d, timeZone)}</time> <span class="muted">${fmtRelative(d, now)}</span></span>`;
}

const STATE_CLASS: Record<string, string> = {
  COMPLETED: 'ok',
  FAILED: 'bad',
  CRASHED: 'bad',
  CANCELLED: 'muted',
  RUNNING: 'info',
  PENDING: 'info',
  SCHEDULED: 'wait',
};

export function stateBadge(type: string, name: string): Markup {
  const cls = name === 'Late' ? 'warn' : STATE_CLASS[type] ?? '';
  return html`<span class="badge ${cls}">${name === type.charAt(0) + type.slice(1).toLowerCase() ? name : `${type} · ${name}`}</span>`;
}

export function table(headers: string[], rows: Markup[], empty: string): Markup {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`;
}

const CSS = `
:root { --fg:#1d2430; --muted:#6b7280; --line:#e3e6eb; --bg:#f6f7f9; --card:#fff; --accent:#2856c7;
  --ok:#1f7a3f; --okbg:#e5f4ea; --bad:#b42318; --badbg:#fdecea; --warn:#8a5a00; --warnbg:#fff4d6; --info:#1d4ed8; --infobg:#e6eefc; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#141a24; color:#fff; padding:0 24px; display:flex; align-items:center; gap:24px; height:52px; }
header .brand { font-weight:700; letter-spacing:.3px; }
header nav a { color:#cfd6e4; text-decoration:none; margin-right:16px; }
header nav a.active, header nav a:hover { color:#fff; }
header .who { margin-left:auto; color:#9aa4b5; font-size:13px; display:flex; gap:12px; align-items:center; }
header .who button { background:none; border:1px solid #3a4456; color:#cfd6e4; border-radius:6px; padding:3px 10px; cursor:pointer; }
main { max-width:1180px; margin:0 auto; padding:24px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:16px; margin:0 0 10px; }
.sub { color:var(--muted); margin:0 0 20px; }
.cards { display:grid; grid-template-columns:repeat(5, 1fr); gap:12px; margin-bottom:20px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .n { font-size:24px; font-weight:650; } .card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.5px; }
.card.bad .n { color:var(--bad); } .card.warn .n { color:var(--warn); }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 18px; margin-bottom:16px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; } .grid2 section { margin-bottom:0; }
table { width:100%; border-collapse:collapse; }
.when, td time, td a { white-space:nowrap; } h2 .muted { font-weight:400; font-size:13px; }
.strip-legend .sw { width:10px; height:10px; border-radius:2px; display:inline-block; vertical-align:-1px; }
th, td { text-align:left; padding:7px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.4px; }
tr:last-child td { border-bottom:none; }
a { color:var(--accent); } code { white-space:nowrap; } code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
.muted { color:var(--muted); } .empty { color:var(--muted); margin:4px 0; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; background:#eef0f3; white-space:nowrap; }
.badge.ok { background:var(--okbg); color:var(--ok); } .badge.bad { background:var(--badbg); color:var(--bad); }
.badge.warn { background:var(--warnbg); color:var(--warn); } .badge.info { background:var(--infobg); color:var(--info); }
.badge.wait { background:#eef0f3; color:#374151; }
.banner { border-radius:10px; padding:14px 16px; margin-bottom:16px; border:1px solid; }
.banner.bad { background:var(--badbg); border-color:#f5c2bd; } .banner.ok { background:var(--okbg); border-color:#b7dfc3; }
.banner.warn { background:var(--warnbg); border-color:#f1d98f; }
.banner h2 { margin-bottom:6px; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:6px 18px; margin:0; } dl.kv dt { color:var(--muted); }
dl.kv dd { margin:0; }
form.inline { display:flex; gap:8px; align-items:center; margin-top:10px; flex-wrap:wrap; }
input[type=text], input[type=password] { padding:7px 10px; border:1px solid #c9ced6; border-radius:6px; font:inherit; min-width:220px; }
button.primary { background:var(--accent); color:#fff; border:0; border-radius:6px; padding:8px 14px; font:inherit; font-weight:600; cursor:pointer; }
button.primary:hover { filter:brightness(1.08); }
meter { width:140px; height:10px; vertical-align:middle; margin-right:8px; }
.login { max-width:380px; margin:80px auto; background:var(--card); border:1px solid var(--line); border-radius:12px; padding:28px; }
.login label { display:block; margin:14px 0 6px; font-weight:600; } .login input { width:100%; }
.login .err { color:var(--bad); margin-top:10px; }
.login button { margin-top:16px; width:100%; }
.chart { width:100%; height:auto; display:block; } .chart .axis { font-size:11px; fill:#6b7280; } .chart .grid { stroke:#eef0f3; }
.legend { display:flex; flex-wrap:wrap; gap:6px 16px; margin:8px 0 0; padding:0; list-style:none; font-size:13px; }
.legend li { display:flex; align-items:center; gap:6px; } .legend .sw { width:12px; height:12px; border-radius:3px; display:inline-block; }
.legend strong { font-variant-numeric:tabular-nums; } .legend li.hot strong { color:var(--bad); } .legend li.late strong { color:var(--warn); }
.strip { display:block; margin:4px 0 8px; } .strip a:hover rect, .strip a:focus rect { stroke:#141a24; stroke-width:2; }
.strip-legend { font-size:12px; color:var(--muted); }
form.filters { display:flex; flex-wrap:wrap; gap:10px 18px; align-items:flex-end; }
form.filters label { display:flex; flex-direction:column; gap:4px; font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.4px; }
form.filters select, form.filters input[type=text] { padding:6px 8px; border:1px solid #c9ced6; border-radius:6px; font:inherit; min-width:0; text-transform:none; }
form.filters fieldset { border:0; padding:0; margin:0; display:flex; flex-wrap:wrap; gap:4px 10px; }
form.filters fieldset legend { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.4px; padding:0; margin-bottom:4px; }
form.filters fieldset label { flex-direction:row; align-items:center; text-transform:none; font-weight:400; color:var(--fg); font-size:13px; letter-spacing:0; }
details.folded { margin-top:10px; } details.folded summary { cursor:pointer; color:var(--muted); }
.pager { display:flex; gap:16px; margin-top:10px; }
.sw-COMPLETED { background:#2e9d57; } .sw-FAILED { background:#d92d20; } .sw-CRASHED { background:#7a1a12; } .sw-CANCELLED { background:#b8bec8; }
.sw-RUNNING { background:#2f6fe4; } .sw-PENDING { background:#8fb2f2; } .sw-SCHEDULED { background:#dfe3ea; } .sw-LATE { background:#e8a317; }
@media (max-width: 900px) { .cards { grid-template-columns:repeat(2, 1fr); } .grid2 { grid-template-columns:1fr; } }
`;

export interface LayoutOptions {
  title: string;
  nonce: string;
  active?: 'overview' | 'flows' | 'runs' | 'queues';
  /** Logged-in session: shows the navigation and logout. */
  session?: { scope: string; csrf: string };
}

export function layout(opts: LayoutOptions, body: Markup): string {
  const nav = opts.session
    ? html`<nav>
        <a href="/admin" class="${opts.active === 'overview' ? 'active' : ''}">Overview</a>
        <a href="/admin/flows" class="${opts.active === 'flows' ? 'active' : ''}">Flows</a>
        <a href="/admin/runs" class="${opts.active === 'runs' ? 'active' : ''}">Runs</a>
        <a href="/admin/queues" class="${opts.active === 'queues' ? 'active' : ''}">Queues</a>
      </nav>
      <div class="who"><span>scope: ${opts.session.scope}</span>
        <form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="${opts.session.csrf}"><button type="submit">Log out</button></form>
      </div>`
    : '';
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · flowwarden</title>
<link rel="icon" href="data:,">
<style nonce="${opts.nonce}">${new Markup(CSS)}</style>
<script src="/admin/app.js" defer></script>
</head><body>
<header><span class="brand">flowwarden</span>${nav}</header>
<main>${body}</main>
</body></html>`.value}`;
}

/**
 * The page's only script: confirmation before destructive form posts (data-confirm), and times in
 * the viewer's zone (<time data-local>: "2026-03-01 11:00:00 CET", UTC kept on hover; SVG axis
 * labels <text data-hm>: "11:00").
 */
export const ADMIN_JS = `'use strict';
(function () {
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function zoneName(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === 'timeZoneName') return parts[i].value;
    } catch (e) {}
    return '';
  }
  function localize() {
    var times = document.querySelectorAll('time[data-local]');
    for (var i = 0; i < times.length; i++) {
      var d = new Date(times[i].getAttribute('datetime'));
      if (isNaN(d.getTime())) continue;
      times[i].textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
        pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' ' + zoneName(d);
    }
    var labels = document.querySelectorAll('[data-hm]');
    for (var j = 0; j < labels.length; j++) {
      var t = new Date(labels[j].getAttribute('data-hm'));
      if (!isNaN(t.getTime())) labels[j].textContent = pad(t.getHours()) + ':' + pad(t.getMinutes());
    }
    var zone = document.querySelector('[data-viewer-zone]');
    if (zone) zone.textContent = (Intl.DateTimeFormat().resolvedOptions().timeZone || 'local') + ' (' + zoneName(new Date()) + ')';
    document.documentElement.setAttribute('data-localized', '1');
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', localize); else localize();
})();
document.addEventListener('submit', function (event) {
  var form = event.target;
  var question = form && form.getAttribute && form.getAttribute('data-confirm');
  if (!question) return;
  var who = form.querySelector('input[name="by"]');
  if (who) question = question + '\\n\\nRecorded as reactivated by: ' + who.value;
  if (!window.confirm(question)) event.preventDefault();
});
`;
