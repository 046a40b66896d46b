/**
 * The admin pages' bodies. Each takes plain data already read from the database and returns
 * markup (escaped by construction, see html.ts); the routes in src/api/routes/admin.ts do the reads.
 */
import type { RunRow } from '../../types.ts';
import type { FlowRow, ScheduleRow } from '../../queries/flows.ts';
import { GUARD_NOTE_PREFIX, type DisabledFlowRow } from '../../queries/guard.ts';
import type { DisabledFlowSummary } from '../../queries/overview.ts';
import type { DueFire, StripRun } from '../../queries/admin.ts';
import type { ChartBucket } from '../../queries/chart.ts';
import type { QueueDepth } from '../../queries/inspect.ts';
import { html, seg, stateBadge, table, when, whenZoned, localTime, type Markup } from './html.ts';
import { runsChart, runStripSvg } from './charts.ts';
import type { TableSize } from '../../queries/retention.ts';
import { formatBytes } from '../../cli/status.ts';
import { RUN_ORIGINS } from '../../schema/enums.ts';

export function loginPage(error?: string): Markup {
  return html`<div class="login">
    <h1>Sign in</h1>
    <p class="sub">Paste an API token: FLOWWARDEN_ADMIN_TOKEN (can reactivate flows) or FLOWWARDEN_READ_TOKEN (view only).</p>
    <form method="post" action="/admin/login">
      <label for="token">Token</label>
      <input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
      ${error ? html`<p class="err" role="alert">${error}</p>` : ''}
      <button class="primary" type="submit">Sign in</button>
    </form>
  </div>`;
}

const runLink = (r: RunRow) => html`<a href="/admin/runs/${seg(r.id)}" class="mono">${r.id.slice(0, 8)}</a>`;
const flowLink = (name: string) => html`<a href="/admin/flows/${seg(name)}">${name}</a>`;
const every = (s: { cron: string | null; everySeconds?: number | null; intervalSeconds?: number | null }) =>
  s.cron ? html`<code>${s.cron}</code>` : html`every ${s.everySeconds ?? s.intervalSeconds}s`;

export interface OverviewData {
  now: Date;
  due: DueFire[];
  chart: { buckets: ChartBucket[]; since: Date; until: Date };
  running: RunRow[];
  late: RunRow[];
  failing: RunRow[];
  disabled: DisabledFlowSummary[];
  /** Retention settings as rows (src/cli/status.ts retentionRows) and table sizes; optional. */
  storage?: { retention: Array<{ setting: string; value: string; env: string }>; databaseBytes: number; tables: TableSize[] };
}

function storageSection(st: NonNullable<OverviewData['storage']>): Markup {
  return html`<section id="storage"><h2>Retention and storage</h2>
    <p class="sub">Database ${formatBytes(st.databaseBytes)} · <span class="muted">see docs/operations.md#retention</span></p>
    <div class="grid2">
      ${table(['setting', 'value', 'set with'], st.retention.map((r) => html`<tr><td>${r.setting}</td><td>${r.value}</td><td class="muted">${r.env}</td></tr>`), '')}
      ${table(['table', 'rows (est.)', 'size'], st.tables.slice(0, 8).map((t) => html`<tr><td>${t.table}</td><td>${t.rowsEstimate.toLocaleString('en')}</td><td>${formatBytes(t.totalBytes)}</td></tr>`), 'No tables.')}
    </div>
  </section>`;
}

export function overviewPage(d: OverviewData): Markup {
  const card = (n: number, label: string, cls = '') => html`<div class="card ${n > 0 ? cls : ''}"><div class="n">${n}</div><div class="l">${label}</div></div>`;
  return html`<h1>Overview</h1>
  <p class="sub">Database time ${localTime(d.now)} · times in your zone, <span data-viewer-zone>UTC</span> (UTC on hover); schedule times in the schedule's zone</p>
  <div class="cards">
    ${card(d.due.length, 'due next')}${card(d.running.length, 'running')}${card(d.late.length, 'late', 'warn')}
    ${card(d.failing.length, 'failed (24 h)', 'bad')}${card(d.disabled.length, 'disabled flows', 'bad')}
  </div>
  <section id="chart"><h2>Runs per minute, last ${Math.round((d.chart.until.getTime() - d.chart.since.getTime()) / 3_600_000)} hours</h2>
    ${runsChart(d.chart.buckets, d.chart)}
    <p class="muted"><a href="/admin/runs?state=FAILED&amp;state=CRASHED&amp;range=1h">What failed in the last hour →</a></p>
  </section>
  <section id="disabled"><h2>Disabled flows</h2>
    ${table(['flow', 'disabled', 'by', 'rule', 'reason'], d.disabled.map((f) => html`<tr>
      <td>${flowLink(f.name)}</td><td>${when(f.disabledAt, d.now)}</td><td>${f.disabledBy ?? '—'}</td><td>${f.rule ?? '—'}</td><td>${f.reason ?? ''}</td></tr>`), 'No flow is disabled.')}
  </section>
  <div class="grid2">
    <section id="due"><h2>Due next</h2>
      ${table(['flow', 'schedule', 'next run'], d.due.map((s) => html`<tr>
        <td>${flowLink(s.flowName)}</td><td>${s.scheduleName} <span class="muted">${every(s)}</span></td><td>${whenZoned(s.nextFire, s.timezone, d.now)}</td></tr>`), 'No enabled schedule.')}
    </section>
    <section id="running"><h2>Running</h2>
      ${table(['run', 'flow', 'state', 'started'], d.running.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${stateBadge(r.stateType, r.stateName)}</td><td>${when(r.startedAt ?? r.scheduledFor, d.now)}</td></tr>`), 'Nothing is running.')}
    </section>
    <section id="late"><h2>Late</h2>
      ${table(['run', 'flow', 'scheduled for'], d.late.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${when(r.scheduledFor, d.now)}</td></tr>`), 'No late runs.')}
    </section>
  </div>
  <section id="failing"><h2>Recent failures <span class="muted">· <a href="/admin/runs?state=FAILED&amp;state=CRASHED&amp;range=24h">all failures of the last 24 h →</a></span></h2>
      ${table(['run', 'flow', 'state', 'ended', 'message'], d.failing.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${stateBadge(r.stateType, r.stateName)}</td><td>${when(r.endedAt, d.now)}</td><td>${clip(r.stateMessage)}</td></tr>`), 'No failures in the last 24 hours.')}
  </section>
  ${d.storage ? storageSection(d.storage) : ''}`;
}

/** Runs as table rows; `withFlow`: a flow column (the cross-flow runs page). */
function runTable(runs: RunRow[], now: Date, withFlow: boolean, empty: string): Markup {
  const headers = withFlow ? ['run', 'flow', 'scheduled for', 'state', 'ended', 'origin', 'message'] : ['run', 'scheduled for', 'state', 'ended', 'origin', 'message'];
  return table(headers, runs.map((r) => html`<tr data-run="${r.id}">
    <td>${runLink(r)}</td>${withFlow ? html`<td>${flowLink(r.flowName)}</td>` : ''}<td>${when(r.scheduledFor, now)}</td><td>${stateBadge(r.stateType, r.stateName)}</td>
    <td>${r.endedAt ? localTime(r.endedAt) : html`<span class="muted">—</span>`}</td><td>${r.origin}</td><td>${clip(r.stateMessage)}</td></tr>`), empty);
}

const clip = (s: string | null, n = 140) => (s && s.length > n ? `${s.slice(0, n - 1)}…` : s ?? '');

/** `after`: this page starts after that flow name; `more`: the last name shown, when more flows follow. */
export function flowsPage(flows: FlowRow[], now: Date, pageInfo: { after?: string | undefined; more?: string | undefined } = {}): Markup {
  const count = `${flows.length} flow${flows.length === 1 ? '' : 's'}${pageInfo.after ? ` after ${pageInfo.after}` : ''}`;
  const more = pageInfo.more ? html`<p id="more-flows"><a href="/admin/flows?after=${seg(pageInfo.more)}">more…</a></p>` : '';
  // "since": when the flow entered its status: disabled_at, or valid_since (created or last reactivated).
  return html`<h1>Flows</h1><p class="sub">${count}${pageInfo.after ? html` · <a href="/admin/flows">first page</a>` : ''}</p>
  <section>${table(['flow', 'target', 'status', 'since'], flows.map((f) => html`<tr>
    <td>${flowLink(f.name)}</td><td>${f.target.type}</td>
    <td>${f.disabledAt ? html`<span class="badge bad">disabled</span>` : html`<span class="badge ok">active</span>`}</td>
    <td class="since">${when(f.disabledAt ?? f.validSince, now)}</td></tr>`), 'No flows yet: create one with flowwarden apply -f FILE or PUT /api/flows/NAME.')}</section>${more}`;
}

export interface FlowPageData {
  now: Date;
  flow: FlowRow;
  schedules: ScheduleRow[];
  /** Next fire per schedule id (computed from the schedule, not its horizon-ahead next_run_at). */
  nextFires: Map<string, Date>;
  /** Recent runs due by now, cancelled ones left out. */
  runs: RunRow[];
  /** Recent cancelled runs (folded); `more`: there are more than shown. */
  cancelled: { runs: RunRow[]; more: boolean };
  strip: StripRun[];
  history: DisabledFlowRow[];
  hold: DisabledFlowRow | null;
  health: { maxConsecutiveFailures: number; consecutiveFailures: number; baseline: string; autoDisable: boolean; criticalTasks: string[] };
  canOperate: boolean;
  csrf: string;
  notice?: { kind: 'ok' | 'bad'; text: string };
}

export function flowPage(d: FlowPageData): Markup {
  const { flow, health } = d;
  const ratio = Math.min(1, health.consecutiveFailures / health.maxConsecutiveFailures);
  const meterCls = ratio >= 1 ? 'bad' : ratio > 0 ? 'warn' : '';
  const disabledBanner = flow.disabledAt
    ? html`<div class="banner bad" id="disabled-banner"><h2>Disabled ${d.hold?.disabledBy === 'guard' ? 'by the guard' : d.hold ? `by ${d.hold.disabledBy}` : ''}</h2>
        <dl class="kv">
          <dt>since</dt><dd>${when(flow.disabledAt, d.now)}</dd>
          ${d.hold ? html`<dt>rule</dt><dd>${d.hold.rule}</dd>` : ''}
          <dt>reason</dt><dd>${d.hold?.reason ?? flow.disabledReason ?? '—'}</dd>
        </dl>
        ${d.canOperate
          ? html`<form class="inline" method="post" action="/admin/flows/${seg(flow.name)}/reactivate" data-confirm="Reactivate flow ${flow.name}? Its schedules start firing again and the failure count restarts from now.">
              <input type="hidden" name="csrf" value="${d.csrf}">
              <input type="text" name="by" placeholder="your name" aria-label="your name" required maxlength="200">
              <button class="primary" type="submit">Reactivate</button>
            </form>`
          : html`<p class="muted">Sign in with the admin token to reactivate.</p>`}
      </div>`
    : '';
  return html`<h1>${flow.name}</h1>
  <p class="sub">${flow.description ?? ''} <span class="badge">${flow.target.type}</span>
    ${flow.disabledAt ? html`<span class="badge bad">disabled</span>` : html`<span class="badge ok">active</span>`}</p>
  ${d.notice ? html`<div class="banner ${d.notice.kind}" role="status" id="notice">${d.notice.text}</div>` : ''}
  ${disabledBanner}
  <section id="health"><h2>Health rule</h2>
    <dl class="kv">
      <dt>consecutive failures</dt>
      <dd><meter class="${meterCls}" min="0" max="${health.maxConsecutiveFailures}" low="1" high="${Math.max(1, health.maxConsecutiveFailures - 1)}" optimum="0" value="${health.consecutiveFailures}"></meter>
        <strong>${health.consecutiveFailures} / ${health.maxConsecutiveFailures}</strong>
        <span class="muted">since baseline ${localTime(health.baseline)}</span></dd>
      <dt>auto-disable</dt><dd>${health.autoDisable ? 'on' : 'off (reported only)'}</dd>
      <dt>critical tasks</dt><dd>${health.criticalTasks.length ? health.criticalTasks.join(', ') : html`<span class="muted">none</span>`}</dd>
    </dl>
  </section>
  <section id="schedules"><h2>Schedules</h2>
    ${table(['name', 'when', 'timezone', 'status', 'next run', 'note'], d.schedules.map((s) => html`<tr>
      <td>${s.name}</td><td>${every(s)}</td><td>${s.timezone}</td>
      <td>${s.enabled ? html`<span class="badge ok">enabled</span>` : s.note?.startsWith(GUARD_NOTE_PREFIX) ? html`<span class="badge bad">held by guard</span>` : html`<span class="badge warn">paused</span>`}</td>
      <td>${s.enabled ? whenZoned(d.nextFires.get(s.id) ?? s.nextRunAt, s.timezone, d.now) : html`<span class="muted">—</span>`}</td><td>${s.note ?? ''}</td></tr>`), 'No schedules: runs only when triggered.')}
  </section>
  <section id="history-strip"><h2>Last runs <span class="muted">(newest at the right)</span></h2>
    ${runStripSvg(d.strip)}
    <p class="strip-legend">${(['COMPLETED', 'FAILED', 'CRASHED', 'LATE', 'RUNNING', 'SCHEDULED', 'CANCELLED'] as const).map((s) => html`<span class="sw sw-${s}"></span> ${s.toLowerCase()} `)}· hover a cell for its state and time, click it to open the run · <a href="/admin/runs?flow=${seg(flow.name)}">all runs of ${flow.name} →</a></p>
  </section>
  <section id="runs"><h2>Recent runs</h2>
    ${runTable(d.runs, d.now, false, 'No finished or running runs yet.')}
    ${d.cancelled.runs.length
      ? html`<details class="folded" id="cancelled-runs"><summary>${d.cancelled.runs.length}${d.cancelled.more ? '+' : ''} cancelled run${d.cancelled.runs.length === 1 ? '' : 's'} (pre-created runs cancelled by a pause, the guard or an operator)</summary>
          ${runTable(d.cancelled.runs, d.now, false, '')}
          <p><a href="/admin/runs?flow=${seg(flow.name)}&amp;state=CANCELLED">all cancelled runs of ${flow.name} →</a></p></details>`
      : ''}
  </section>
  <section id="guard-history"><h2>Guard history</h2>
    ${table(['disabled', 'by', 'rule', 'reason', 'reactivated'], d.history.map((h) => html`<tr>
      <td>${when(h.disabledAt, d.now)}</td><td>${h.disabledBy}</td><td>${h.rule}</td><td>${clip(h.reason)}</td>
      <td>${h.reactivatedAt ? html`${localTime(h.reactivatedAt)} by <strong>${h.reactivatedBy}</strong>` : html`<span class="badge bad">held</span>`}</td></tr>`), 'Never disabled.')}
  </section>`;
}

export interface RunPageData {
  now: Date;
  run: RunRow;
  history: Array<{ fromType: string | null; fromName: string | null; toType: string; toName: string; message: string | null; at: Date }>;
  tasks: Array<{ name: string; stateType: string; message: string | null; at: Date }>;
}

export function runPage(d: RunPageData): Markup {
  const r = d.run;
  return html`<h1>Run <span class="mono">${r.id}</span></h1>
  <p class="sub">${flowLink(r.flowName)} · ${stateBadge(r.stateType, r.stateName)}</p>
  <section><dl class="kv">
    <dt>scheduled for</dt><dd>${when(r.scheduledFor, d.now)}</dd>
    <dt>started</dt><dd>${when(r.startedAt, d.now)}</dd>
    <dt>ended</dt><dd>${when(r.endedAt, d.now)}</dd>
    <dt>origin</dt><dd>${r.origin}</dd>
    <dt>message</dt><dd>${r.stateMessage ?? '—'}</dd>
    <dt>external id</dt><dd class="mono">${r.externalId ?? '—'}</dd>
    <dt>parameters</dt><dd class="mono">${JSON.stringify(r.parameters)}</dd>
  </dl></section>
  <section id="history"><h2>State history</h2>
    ${table(['at', 'from', 'to', 'message'], d.history.map((h) => html`<tr>
      <td>${localTime(h.at)}</td><td>${h.fromType ? stateBadge(h.fromType, h.fromName ?? '') : html`<span class="muted">created</span>`}</td>
      <td>${stateBadge(h.toType, h.toName)}</td><td>${h.message ?? ''}</td></tr>`), 'No history.')}
  </section>
  <section id="tasks"><h2>Task results</h2>
    ${table(['task', 'state', 'message', 'at'], d.tasks.map((t) => html`<tr>
      <td>${t.name}</td><td>${stateBadge(t.stateType, t.stateType.charAt(0) + t.stateType.slice(1).toLowerCase())}</td><td>${t.message ?? ''}</td><td>${localTime(t.at)}</td></tr>`), 'No task results reported.')}
  </section>`;
}

export function queuesPage(queues: QueueDepth[], now: Date): Markup {
  return html`<h1>Queues</h1><p class="sub">pg-boss job counts per queue at ${localTime(now)}</p>
  <section>${table(['queue', 'queued', 'ready', 'deferred', 'retrying', 'active', 'failed (retained)', 'oldest ready waiting'], queues.map((q) => html`<tr>
    <td class="mono">${q.queue}</td><td>${q.queued}</td><td>${q.ready}</td><td>${q.deferred}</td><td>${q.retry}</td><td>${q.active}</td>
    <td>${q.failed > 0 ? html`<span class="badge bad">${q.failed}</span>` : 0}</td>
    <td>${q.ready > 0 ? `${Math.round(q.oldestReadyAgeSeconds)} s` : html`<span class="muted">—</span>`}</td></tr>`), 'No queues.')}</section>`;
}

export const RUN_RANGES = { '15m': 15 * 60, '1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, '7d': 7 * 24 * 3600, all: 0 } as const;
export type RunRange = keyof typeof RUN_RANGES;
export const RUN_STATE_FILTERS = ['SCHEDULED', 'LATE', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'] as const;
/** Re-exported for the runs page's query validation (src/api/routes/admin.ts). */
export { RUN_ORIGINS };

/** The runs page's filters as the query string carries them (already validated). */
export interface RunsFilterView {
  flow?: string | undefined;
  states: string[];
  origins: string[];
  range: RunRange;
  /** An explicit window (a chart bar's minute); overrides range. */
  since?: Date | undefined;
  until?: Date | undefined;
  /** Include runs scheduled after now (pre-created by the tick). */
  upcoming: boolean;
}

/** The query string for a filter (and a cursor), for links that keep the filters. */
export function runsQuery(f: RunsFilterView, after?: string): string {
  const q = new URLSearchParams();
  if (f.flow) q.set('flow', f.flow);
  for (const s of f.states) q.append('state', s);
  for (const o of f.origins) q.append('origin', o);
  if (f.since || f.until) {
    if (f.since) q.set('since', f.since.toISOString());
    if (f.until) q.set('until', f.until.toISOString());
  } else q.set('range', f.range);
  if (f.upcoming) q.set('upcoming', '1');
  if (after) q.set('after', after);
  return q.toString();
}

export interface RunsPageData {
  now: Date;
  filter: RunsFilterView;
  runs: RunRow[];
  /** Cursor of the next (older) page, when there is one. */
  next?: string | undefined;
  /** This page continues a walk (a cursor was given). */
  paged: boolean;
  error?: string | undefined;
}

export function runsPage(d: RunsPageData): Markup {
  const f = d.filter;
  const checked = (on: boolean) => (on ? html` checked` : '');
  const window = f.since || f.until
    ? html`<p class="muted" id="window">Window: ${f.since ? localTime(f.since) : 'the beginning'} – ${f.until ? localTime(f.until) : 'now'} · <a href="/admin/runs?${runsQuery({ ...f, since: undefined, until: undefined })}">clear</a></p>`
    : '';
  const summary = `${d.runs.length}${d.next ? '+' : ''} run${d.runs.length === 1 ? '' : 's'}`;
  return html`<h1>Runs</h1>
  <p class="sub">All flows, newest scheduled first · times in your zone, <span data-viewer-zone>UTC</span> (UTC on hover)</p>
  <section id="filters">
    <form class="filters" method="get" action="/admin/runs">
      <label>Flow <input type="text" name="flow" value="${f.flow ?? ''}" placeholder="any flow" size="18"></label>
      <fieldset><legend>State</legend>${RUN_STATE_FILTERS.map((s) => html`<label><input type="checkbox" name="state" value="${s}"${checked(f.states.includes(s))}> ${s.charAt(0) + s.slice(1).toLowerCase()}</label>`)}</fieldset>
      <fieldset><legend>Origin</legend>${RUN_ORIGINS.map((o) => html`<label><input type="checkbox" name="origin" value="${o}"${checked(f.origins.includes(o))}> ${o}</label>`)}</fieldset>
      ${f.since || f.until
        ? html`${f.since ? html`<input type="hidden" name="since" value="${f.since.toISOString()}">` : ''}${f.until ? html`<input type="hidden" name="until" value="${f.until.toISOString()}">` : ''}`
        : html`<label>Scheduled in <select name="range">${Object.keys(RUN_RANGES).map((r) => html`<option value="${r}"${r === f.range ? html` selected` : ''}>${r === 'all' ? 'any time' : `the last ${r}`}</option>`)}</select></label>`}
      <fieldset><legend>Upcoming</legend><label><input type="checkbox" name="upcoming" value="1"${checked(f.upcoming)}> include pre-created future runs</label></fieldset>
      <button class="primary" type="submit">Filter</button> <a href="/admin/runs">reset</a>
    </form>
    ${window}
    ${d.error ? html`<p class="banner bad" role="alert" id="filter-error">${d.error}</p>` : ''}
  </section>
  <section id="runs-list"><h2>${summary}${d.paged ? html` <span class="muted">(continued · <a href="/admin/runs?${runsQuery(f)}">newest</a>)</span>` : ''}</h2>
    ${runTable(d.runs, d.now, true, 'No runs match these filters.')}
    ${d.next ? html`<p class="pager"><a id="older" href="/admin/runs?${runsQuery(f, d.next)}">older runs →</a></p>` : ''}
  </section>`;
}
