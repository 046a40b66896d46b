/**
 * The admin page's pictures, as server-rendered SVG (no script, no external asset; colours are
 * presentation attributes, so the strict CSP stays): the overview's runs-per-minute chart and a
 * flow's run-history strip. Every bar and cell carries its numbers in data-* attributes (the
 * browser test checks them against the database) and a <title> for hover.
 */
import type { StripRun } from '../../queries/admin.ts';
import type { ChartBucket, ChartState } from '../../queries/chart.ts';
import { fmtTime, html, seg, type Markup } from './html.ts';

export const STATE_COLOURS: Record<ChartState, string> = {
  COMPLETED: '#2e9d57',
  FAILED: '#d92d20',
  CRASHED: '#7a1a12',
  CANCELLED: '#b8bec8',
  RUNNING: '#2f6fe4',
  PENDING: '#8fb2f2',
  SCHEDULED: '#dfe3ea',
  LATE: '#e8a317',
};

/** Bottom to top in a bar; also the legend's order. */
export const CHART_ORDER: ChartState[] = ['COMPLETED', 'FAILED', 'CRASHED', 'LATE', 'RUNNING', 'PENDING', 'SCHEDULED', 'CANCELLED'];

const LABEL: Record<ChartState, string> = {
  COMPLETED: 'completed', FAILED: 'failed', CRASHED: 'crashed', CANCELLED: 'cancelled', RUNNING: 'running', PENDING: 'pending', SCHEDULED: 'scheduled', LATE: 'late',
};

export const stripState = (r: Pick<StripRun, 'stateType' | 'stateName'>): ChartState =>
  (r.stateType === 'SCHEDULED' && r.stateName === 'Late' ? 'LATE' : r.stateType) as ChartState;


const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Stacked bars of runs per minute over [since, until) by state, each bar a link to the runs page
 * for that minute; the totals per state under it (failed, crashed and late stand out).
 */
export function runsChart(buckets: ChartBucket[], window: { since: Date; until: Date }): Markup {
  const W = 1120, H = 190, left = 36, right = 8, top = 8, bottom = 22;
  const startMs = window.since.getTime();
  const minutes = Math.max(1, Math.round((window.until.getTime() - startMs) / 60_000));
  const perMinute = new Map<number, Map<ChartState, number>>();
  const totals = new Map<ChartState, number>();
  for (const b of buckets) {
    const k = Math.floor((b.minute.getTime() - startMs) / 60_000);
    if (k < 0 || k >= minutes) continue;
    const m = perMinute.get(k) ?? new Map<ChartState, number>();
    m.set(b.state, (m.get(b.state) ?? 0) + b.count);
    perMinute.set(k, m);
    totals.set(b.state, (totals.get(b.state) ?? 0) + b.count);
  }
  let max = 0;
  for (const m of perMinute.values()) max = Math.max(max, [...m.values()].reduce((a, c) => a + c, 0));
  const scaleMax = niceCeil(Math.max(1, max));
  const plotW = W - left - right, plotH = H - top - bottom;
  const bw = plotW / minutes;
  const y = (v: number) => top + plotH - (v / scaleMax) * plotH;

  const bars: Markup[] = [];
  for (const [k, m] of [...perMinute.entries()].sort((a, b) => a[0] - b[0])) {
    const x = left + k * bw;
    const minute = startMs + k * 60_000;
    let acc = 0;
    const rects: Markup[] = [];
    const parts: string[] = [];
    for (const s of CHART_ORDER) {
      const n = m.get(s);
      if (!n) continue;
      const y0 = y(acc), y1 = y(acc + n);
      acc += n;
      parts.push(`${LABEL[s]} ${n}`);
      rects.push(html`<rect x="${x.toFixed(2)}" y="${y1.toFixed(2)}" width="${Math.max(1, bw - 1).toFixed(2)}" height="${Math.max(0.5, y0 - y1).toFixed(2)}" fill="${STATE_COLOURS[s]}" data-state="${s}" data-count="${n}"></rect>`);
    }
    const href = `/admin/runs?since=${encodeURIComponent(iso(minute))}&until=${encodeURIComponent(iso(minute + 60_000))}`;
    bars.push(html`<a href="${href}" class="bar" data-minute="${iso(minute)}" data-total="${acc}"><title>${fmtTime(new Date(minute))} UTC: ${parts.join(', ')}</title>${rects}</a>`);
  }

  // Gridlines at 0, half and the top of the scale; time labels every 30 minutes (local time via app.js).
  const grid = [0, scaleMax / 2, scaleMax].map((v) => html`<line class="grid" x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"></line>
    <text class="axis" x="${left - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`);
  const ticks: Markup[] = [];
  const tickEvery = minutes > 360 ? 60 : 30;
  const firstTick = Math.ceil(startMs / (tickEvery * 60_000)) * tickEvery * 60_000;
  for (let t = firstTick; t < startMs + minutes * 60_000; t += tickEvery * 60_000) {
    const x = left + ((t - startMs) / 60_000) * bw;
    ticks.push(html`<line class="grid" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top}" y2="${top + plotH}"></line>
      <text class="axis" x="${x.toFixed(1)}" y="${H - 6}" text-anchor="middle" data-hm="${iso(t)}">${iso(t).slice(11, 16)}</text>`);
  }
  const total = [...totals.values()].reduce((a, c) => a + c, 0);
  const legend = CHART_ORDER.filter((s) => totals.get(s) || s === 'FAILED' || s === 'LATE' || s === 'COMPLETED').map((s) => {
    const n = totals.get(s) ?? 0;
    const cls = (s === 'FAILED' || s === 'CRASHED') && n > 0 ? 'hot' : s === 'LATE' && n > 0 ? 'late' : '';
    return html`<li class="${cls}" data-state="${s}" data-total="${n}"><span class="sw sw-${s}"></span><a href="/admin/runs?state=${s}&since=${encodeURIComponent(window.since.toISOString())}&until=${encodeURIComponent(window.until.toISOString())}">${LABEL[s]}</a> <strong>${n}</strong></li>`;
  });
  return html`<svg class="chart" id="runs-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Runs per minute by state, ${total} runs" data-since="${window.since.toISOString()}" data-until="${window.until.toISOString()}">
    ${grid}${ticks}${bars}</svg>
  <ul class="legend" id="chart-legend">${legend}<li class="muted">${total} runs · by scheduled minute</li></ul>`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The last runs of a flow as state-coloured cells, newest at the right; each cell links to its run. */
export function runStripSvg(runs: StripRun[], slots = 40): Markup {
  if (runs.length === 0) return html`<p class="empty">No runs yet.</p>`;
  const cell = 16, gap = 3, h = 26;
  const W = slots * (cell + gap);
  const offset = slots - runs.length; // right-aligned: the newest cell is always at the right edge
  const cells = runs.map((r, i) => {
    const s = stripState(r);
    const x = (offset + i) * (cell + gap);
    return html`<a href="/admin/runs/${seg(r.id)}" data-run="${r.id}" data-state="${s}"><title>${r.stateName} · ${fmtTime(r.scheduledFor)} UTC${r.stateMessage ? ` · ${r.stateMessage.slice(0, 120)}` : ''}</title><rect x="${x}" y="2" width="${cell}" height="${h - 4}" rx="3" fill="${STATE_COLOURS[s] ?? '#dfe3ea'}"></rect></a>`;
  });
  return html`<svg class="strip" id="run-strip" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="Last ${runs.length} runs, newest at the right">${cells}</svg>`;
}
