/**
 * The admin pages' bodies. Each takes plain data already read from the database and returns
 * markup (escaped by construction, see html.ts); the routes in src/api/routes/admin.ts do the reads.
 */
import type { RunRow } from '../../queries/runs.ts';
import type { FlowRow, ScheduleRow } from '../../queries/flows.ts';
import { GUARD_NOTE_PREFIX, type DisabledFlowRow } from '../../queries/guard.ts';
import type { DisabledFlowSummary, DueSchedule } from '../../queries/overview.ts';
import type { QueueDepth } from '../../queries/inspect.ts';
import type { TableSize } from '../../queries/retention.ts';
import { formatBytes } from '../../cli/status.ts';
import { html, seg, stateBadge, table, when, fmtTime, type Markup } from './html.ts';

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
  due: DueSchedule[];
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
  <p class="sub">Database time ${fmtTime(d.now)}</p>
  <div class="cards">
    ${card(d.due.length, 'due next')}${card(d.running.length, 'running')}${card(d.late.length, 'late', 'warn')}
    ${card(d.failing.length, 'failed (24 h)', 'bad')}${card(d.disabled.length, 'disabled flows', 'bad')}
  </div>
  <section id="disabled"><h2>Disabled flows</h2>
    ${table(['flow', 'disabled', 'by', 'rule', 'reason'], d.disabled.map((f) => html`<tr>
      <td>${flowLink(f.name)}</td><td>${when(f.disabledAt, d.now)}</td><td>${f.disabledBy ?? '—'}</td><td>${f.rule ?? '—'}</td><td>${f.reason ?? ''}</td></tr>`), 'No flow is disabled.')}
  </section>
  <div class="grid2">
    <section id="due"><h2>Due next</h2>
      ${table(['flow', 'schedule', 'next run'], d.due.map((s) => html`<tr>
        <td>${flowLink(s.flowName)}</td><td>${s.scheduleName} <span class="muted">${every(s)}</span></td><td>${when(s.nextRunAt, d.now)}</td></tr>`), 'No enabled schedule.')}
    </section>
    <section id="running"><h2>Running</h2>
      ${table(['run', 'flow', 'state', 'started'], d.running.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${stateBadge(r.stateType, r.stateName)}</td><td>${when(r.startedAt ?? r.scheduledFor, d.now)}</td></tr>`), 'Nothing is running.')}
    </section>
    <section id="late"><h2>Late</h2>
      ${table(['run', 'flow', 'scheduled for'], d.late.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${when(r.scheduledFor, d.now)}</td></tr>`), 'No late runs.')}
    </section>
    <section id="failing"><h2>Recent failures</h2>
      ${table(['run', 'flow', 'state', 'ended', 'message'], d.failing.map((r) => html`<tr>
        <td>${runLink(r)}</td><td>${flowLink(r.flowName)}</td><td>${stateBadge(r.stateType, r.stateName)}</td><td>${when(r.endedAt, d.now)}</td><td>${clip(r.stateMessage)}</td></tr>`), 'No failures in the last 24 hours.')}
    </section>
  </div>
  ${d.storage ? storageSection(d.storage) : ''}`;
}

const clip = (s: string | null, n = 140) => (s && s.length > n ? `${s.slice(0, n - 1)}…` : s ?? '');

/** `after`: this page starts after that flow name; `more`: the last name shown, when more flows follow. */
export function flowsPage(flows: FlowRow[], now: Date, pageInfo: { after?: string | undefined; more?: string | undefined } = {}): Markup {
  const count = `${flows.length} flow${flows.length === 1 ? '' : 's'}${pageInfo.after ? ` after ${pageInfo.after}` : ''}`;
  const more = pageInfo.more ? html`<p id="more-flows"><a href="/admin/flows?after=${seg(pageInfo.more)}">more…</a></p>` : '';
  return html`<h1>Flows</h1><p class="sub">${count}${pageInfo.after ? html` · <a href="/admin/flows">first page</a>` : ''}</p>
  <section>${table(['flow', 'target', 'status', 'since'], flows.map((f) => html`<tr>
    <td>${flowLink(f.name)}</td><td>${f.target.type}</td>
    <td>${f.disabledAt ? html`<span class="badge bad">disabled</span>` : html`<span class="badge ok">active</span>`}</td>
    <td>${f.disabledAt ? when(f.disabledAt, now) : ''}</td></tr>`), 'No flows yet: create one with flowwarden apply -f FILE or PUT /api/flows/NAME.')}</section>${more}`;
}

export interface FlowPageData {
  now: Date;
  flow: FlowRow;
  schedules: ScheduleRow[];
  runs: RunRow[];
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
        <span class="muted">since baseline ${fmtTime(health.baseline)}</span></dd>
      <dt>auto-disable</dt><dd>${health.autoDisable ? 'on' : 'off (reported only)'}</dd>
      <dt>critical tasks</dt><dd>${health.criticalTasks.length ? health.criticalTasks.join(', ') : html`<span class="muted">none</span>`}</dd>
    </dl>
  </section>
  <section id="schedules"><h2>Schedules</h2>
    ${table(['name', 'when', 'timezone', 'status', 'next run', 'note'], d.schedules.map((s) => html`<tr>
      <td>${s.name}</td><td>${every(s)}</td><td>${s.timezone}</td>
      <td>${s.enabled ? html`<span class="badge ok">enabled</span>` : s.note?.startsWith(GUARD_NOTE_PREFIX) ? html`<span class="badge bad">held by guard</span>` : html`<span class="badge warn">paused</span>`}</td>
      <td>${s.enabled ? when(s.nextRunAt, d.now) : html`<span class="muted">—</span>`}</td><td>${s.note ?? ''}</td></tr>`), 'No schedules: runs only when triggered.')}
  </section>
  <section id="runs"><h2>Recent runs</h2>
    ${table(['run', 'scheduled for', 'state', 'origin', 'message'], d.runs.map((r) => html`<tr>
      <td>${runLink(r)}</td><td>${when(r.scheduledFor, d.now)}</td><td>${stateBadge(r.stateType, r.stateName)}</td><td>${r.origin}</td><td>${clip(r.stateMessage)}</td></tr>`), 'No runs yet.')}
  </section>
  <section id="guard-history"><h2>Guard history</h2>
    ${table(['disabled', 'by', 'rule', 'reason', 'reactivated'], d.history.map((h) => html`<tr>
      <td>${when(h.disabledAt, d.now)}</td><td>${h.disabledBy}</td><td>${h.rule}</td><td>${clip(h.reason)}</td>
      <td>${h.reactivatedAt ? html`${fmtTime(h.reactivatedAt)} by <strong>${h.reactivatedBy}</strong>` : html`<span class="badge bad">held</span>`}</td></tr>`), 'Never disabled.')}
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
      <td>${fmtTime(h.at)}</td><td>${h.fromType ? stateBadge(h.fromType, h.fromName ?? '') : html`<span class="muted">created</span>`}</td>
      <td>${stateBadge(h.toType, h.toName)}</td><td>${h.message ?? ''}</td></tr>`), 'No history.')}
  </section>
  <section id="tasks"><h2>Task results</h2>
    ${table(['task', 'state', 'message', 'at'], d.tasks.map((t) => html`<tr>
      <td>${t.name}</td><td>${stateBadge(t.stateType, t.stateType.charAt(0) + t.stateType.slice(1).toLowerCase())}</td><td>${t.message ?? ''}</td><td>${fmtTime(t.at)}</td></tr>`), 'No task results reported.')}
  </section>`;
}

export function queuesPage(queues: QueueDepth[], now: Date): Markup {
  return html`<h1>Queues</h1><p class="sub">pg-boss job counts per queue at ${fmtTime(now)}</p>
  <section>${table(['queue', 'queued', 'ready', 'deferred', 'retrying', 'active', 'failed (retained)', 'oldest ready waiting'], queues.map((q) => html`<tr>
    <td class="mono">${q.queue}</td><td>${q.queued}</td><td>${q.ready}</td><td>${q.deferred}</td><td>${q.retry}</td><td>${q.active}</td>
    <td>${q.failed > 0 ? html`<span class="badge bad">${q.failed}</span>` : 0}</td>
    <td>${q.ready > 0 ? `${Math.round(q.oldestReadyAgeSeconds)} s` : html`<span class="muted">—</span>`}</td></tr>`), 'No queues.')}</section>`;
}
