/**
 * The admin page's server-rendered HTML on real Postgres: the runs page across flows (filters,
 * keyset pages), the overview's runs-per-minute chart and a flow's run strip checked against the
 * database, folded cancelled runs, schedule times in the schedule's zone, "Due next" showing the
 * next fire (not the horizon's), the flows list's "since", and the dev token kept per data folder.
 * test/admin.browser.test.ts drives the same pages in Chromium.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from './support/app.ts';
import { seedAdminHistory } from './support/admin-seed.ts';
import { devAdminToken, DEV_TOKEN_FILE } from '../src/cli/dev.ts';

let app: TestApp;
let cookie = '';

before(async () => {
  app = await startTestApp({ roles: ['api'] });
  await seedAdminHistory(app.pool);
  const login = await app.api!.inject({
    method: 'POST', url: '/admin/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TEST_ADMIN_TOKEN}`,
  });
  assert.equal(login.statusCode, 303);
  cookie = String(login.headers['set-cookie']).split(';')[0]!;
});

after(async () => {
  await app?.close();
});

async function get(url: string, status = 200): Promise<string> {
  const res = await app.api!.inject({ method: 'GET', url, headers: { cookie } });
  assert.equal(res.statusCode, status, `${url}: ${res.body.slice(0, 300)}`);
  return res.body;
}

/** Run ids listed in the runs table (rows carry data-run). */
const runIds = (body: string) => [...body.matchAll(/<tr data-run="([0-9a-f-]{36})">/g)].map((m) => m[1]!);
const section = (body: string, id: string) => {
  const start = body.indexOf(`id="${id}"`);
  assert.ok(start >= 0, `section #${id} is on the page`);
  return body.slice(start, body.indexOf('</section>', start));
};

async function idsWhere(where: string, params: unknown[] = []): Promise<string[]> {
  const { rows } = await app.pool.query<{ id: string }>(
    `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where ${where} order by r.scheduled_for desc, r.id desc`,
    params,
  );
  return rows.map((r) => r.id);
}

describe('the runs page', () => {
  test('answers "what failed in the last hour, across everything?" from one page', async () => {
    const body = await get('/admin/runs?state=FAILED&state=CRASHED&range=1h');
    const expected = await idsWhere(`r.state_type in ('FAILED', 'CRASHED') and r.scheduled_for >= now() - interval '1 hour' and r.scheduled_for <= now()`);
    assert.ok(expected.length >= 3, 'the seed has failures in the last hour');
    assert.deepEqual(runIds(body), expected);
    // Several flows, each run linked, with its message.
    assert.match(body, /href="\/admin\/flows\/ping-fast"/);
    assert.match(body, /href="\/admin\/flows\/report-builder"/);
    assert.match(body, /customer 4411: template missing/);
    assert.match(body, /<input type="checkbox" name="state" value="FAILED" checked>/, 'the form shows the filter in use');
  });

  test('filters by flow, state (Late apart), origin and an explicit window; upcoming runs only when asked', async () => {
    assert.deepEqual(runIds(await get('/admin/runs?flow=report-builder&range=all')), await idsWhere(`f.name = 'report-builder' and r.scheduled_for <= now()`));
    assert.deepEqual(runIds(await get('/admin/runs?origin=api&range=all')), await idsWhere(`r.origin = 'api' and r.scheduled_for <= now()`));
    assert.deepEqual(runIds(await get('/admin/runs?state=LATE&range=all')), await idsWhere(`r.state_type = 'SCHEDULED' and r.state_name = 'Late'`));
    assert.deepEqual(runIds(await get('/admin/runs?state=RUNNING,PENDING&range=all')), await idsWhere(`r.state_type in ('RUNNING', 'PENDING')`));
    const future = await idsWhere(`r.scheduled_for > now()`);
    assert.equal(future.length, 5);
    const withUpcoming = runIds(await get('/admin/runs?flow=ping-fast&range=15m&upcoming=1'));
    for (const id of future) assert.ok(withUpcoming.includes(id), 'upcoming=1 lists pre-created future runs');
    const without = runIds(await get('/admin/runs?flow=ping-fast&range=15m'));
    for (const id of future) assert.ok(!without.includes(id), 'by default the page stops at now');
    // A chart bar's window (since/until) is exact.
    const { rows: [w] } = await app.pool.query(`select date_trunc('minute', now() - interval '30 minutes') as since`);
    const since: Date = w.since;
    const until = new Date(since.getTime() + 10 * 60_000);
    const windowed = runIds(await get(`/admin/runs?since=${since.toISOString()}&until=${until.toISOString()}`));
    assert.deepEqual(windowed, await idsWhere(`r.scheduled_for >= $1 and r.scheduled_for < $2`, [since, until]));
  });

  test('bad filters are refused with what was wrong and how to write it, and the rest still applies', async () => {
    const body = await get('/admin/runs?state=BROKEN&origin=cron&since=yesterday&flow=report-builder&range=all', 400);
    assert.match(body, /state BROKEN is not one of SCHEDULED, LATE, PENDING/);
    assert.match(body, /origin cron is not one of schedule, manual, api, watch/);
    assert.match(body, /since ‘yesterday’ is not an ISO 8601 time with a zone, e\.g\. \d{4}-/);
    assert.deepEqual(runIds(body), await idsWhere(`f.name = 'report-builder' and r.scheduled_for <= now()`));
    assert.match(await get('/admin/runs?after=nonsense', 400), /page cursor is not valid/);
    // An inherited property name is not a range either (it used to reach Postgres as an invalid date: 500).
    assert.match(await get('/admin/runs?range=constructor', 400), /range ‘constructor’ is not one of 15m, /);
  });

  test('pages deep through every run, newest first, without a gap or a repeat', async () => {
    const expected = await idsWhere(`r.scheduled_for <= now()`);
    assert.ok(expected.length > 100, 'more than two pages');
    const seen: string[] = [];
    let url: string | undefined = '/admin/runs?range=all';
    let pages = 0;
    while (url) {
      const body = await get(url);
      seen.push(...runIds(body));
      pages++;
      const older = /<a id="older" href="([^"]+)">/.exec(body);
      url = older ? older[1]!.replace(/&amp;/g, '&') : undefined;
      if (url) assert.match(url, /range=all/, 'the next page keeps the filters');
    }
    assert.equal(pages, Math.ceil(expected.length / 50));
    assert.deepEqual(seen, expected);
  });
});

describe('the overview', () => {
  test("the runs-per-minute chart's bars and totals are the database's counts", async () => {
    const body = await get('/admin');
    const svg = /<svg class="chart" id="runs-chart"[^>]*data-since="([^"]+)" data-until="([^"]+)"/.exec(body);
    assert.ok(svg, 'the chart is on the overview');
    const since = new Date(svg[1]!), until = new Date(svg[2]!);
    assert.equal(until.getTime() - since.getTime(), 3 * 3_600_000);
    const { rows } = await app.pool.query<{ minute: Date; state: string; n: number }>(
      `select date_trunc('minute', scheduled_for) as minute,
              case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end as state, count(*)::int as n
         from flowwarden.runs where scheduled_for >= $1 and scheduled_for < $2 group by 1, 2`,
      [since, until],
    );
    const fromDb = new Map(rows.map((r) => [`${r.minute.toISOString()} ${r.state}`, r.n]));
    const drawn = new Map<string, number>();
    for (const bar of body.matchAll(/<a href="[^"]*" class="bar" data-minute="([^"]+)" data-total="(\d+)">(.*?)<\/a>/gs)) {
      let total = 0;
      for (const rect of bar[3]!.matchAll(/data-state="([A-Z]+)" data-count="(\d+)"/g)) {
        drawn.set(`${bar[1]} ${rect[1]}`, Number(rect[2]));
        total += Number(rect[2]);
      }
      assert.equal(total, Number(bar[2]));
    }
    assert.deepEqual(drawn, fromDb);
    // The legend's totals: failed and late visible at a glance.
    const totals = new Map<string, number>();
    for (const r of rows) totals.set(r.state, (totals.get(r.state) ?? 0) + r.n);
    for (const state of ['COMPLETED', 'FAILED', 'LATE']) {
      const li = new RegExp(`<li class="[a-z]*" data-state="${state}" data-total="(\\d+)">`).exec(body);
      assert.ok(li, `the legend shows ${state}`);
      assert.equal(Number(li[1]), totals.get(state) ?? 0, `${state} total`);
    }
    assert.match(body, /<li class="hot" data-state="FAILED"/);
    assert.match(body, /<li class="late" data-state="LATE"/);
    // Each legend entry lists that series' runs for the chart's window.
    const lateLink = /<li class="late" data-state="LATE"[^>]*><span class="sw sw-LATE"><\/span><a href="([^"]+)">/.exec(body);
    assert.ok(lateLink);
    assert.deepEqual(runIds(await get(lateLink[1]!.replace(/&amp;/g, '&'))), await idsWhere(`r.state_type = 'SCHEDULED' and r.state_name = 'Late' and r.scheduled_for >= $1 and r.scheduled_for < $2`, [since, until]));
  });

  test('"Due next" shows the next fire, not the horizon\'s next_run_at; schedule times are in the schedule\'s zone', async () => {
    // As the tick leaves it: next_run_at a 30 s horizon ahead of an every-3s schedule.
    const { rows: [s] } = await app.pool.query(
      `update flowwarden.schedules set next_run_at = now() + interval '30 seconds' where name = 'every-3s' returning next_run_at, anchor, now() as now`,
    );
    const body = await get('/admin');
    const due = section(body, 'due');
    const row = /ping-fast<\/a><\/td><td>every-3s.*?<time datetime="([^"]+)" data-zone="UTC"/s.exec(due);
    assert.ok(row, 'ping-fast is due');
    const shown = new Date(row[1]!);
    assert.ok(shown < s.next_run_at, `${shown.toISOString()} is before next_run_at ${s.next_run_at.toISOString()}`);
    assert.ok(shown > s.now, 'and after the time before the request');
    assert.equal((shown.getTime() - s.anchor.getTime()) % 3000, 0, 'a fire time of the 3 s interval');
    assert.doesNotMatch(due, /in 30s/);

    const flow = await get('/admin/flows/etl-nightly');
    const schedules = section(flow, 'schedules');
    assert.match(schedules, /data-zone="Europe\/Berlin" title="[^"]+ UTC">\d{4}-\d{2}-\d{2} 01:30:00 (CET|CEST)<\/time>/, 'the Berlin nightly schedule shows 01:30 Berlin time');
    // Other times are marked for the viewer's zone (app.js), UTC in the text until then.
    assert.match(flow, /<time datetime="[^"]+" data-local title="[^"]+ UTC">/);
  });
});

describe('a flow page', () => {
  test('recent runs show finished and running runs first and fold the cancelled ones', async () => {
    const body = await get('/admin/flows/etl-nightly');
    const runs = section(body, 'runs');
    const folded = runs.slice(runs.indexOf('<details'));
    const shown = runIds(runs.slice(0, runs.indexOf('<details')));
    assert.deepEqual(shown, await idsWhere(`f.name = 'etl-nightly' and r.state_type <> 'CANCELLED' and r.scheduled_for <= now()`));
    assert.match(folded, /<details class="folded" id="cancelled-runs"><summary>8 cancelled runs/);
    assert.deepEqual(runIds(folded), await idsWhere(`f.name = 'etl-nightly' and r.state_type = 'CANCELLED'`));
  });

  test('the run strip shows the last runs in order, newest at the right, each linked to its run', async () => {
    const body = await get('/admin/flows/ping-fast');
    const strip = /<svg class="strip" id="run-strip"[^>]*>(.*?)<\/svg>/s.exec(body);
    assert.ok(strip, 'the strip is on the flow page');
    const cells = [...strip[1]!.matchAll(/<a href="\/admin\/runs\/([0-9a-f-]{36})" data-run="[^"]+" data-state="([A-Z]+)">.*?<rect x="(\d+)"/g)];
    const { rows } = await app.pool.query<{ id: string; state: string }>(
      `select id, case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end as state from (
         select r.* from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
          where f.name = 'ping-fast' and r.scheduled_for <= now() order by r.scheduled_for desc, r.id desc limit 40) x
        order by scheduled_for, id`,
    );
    assert.equal(cells.length, 40);
    assert.deepEqual(cells.map((c) => [c[1], c[2]]), rows.map((r) => [r.id, r.state]));
    const xs = cells.map((c) => Number(c[3]));
    assert.deepEqual(xs, [...xs].sort((a, b) => a - b), 'oldest at the left, newest at the right');
  });
});

test('the flows list says since when each flow is in its status (created or reactivated for active flows)', async () => {
  const body = await get('/admin/flows');
  const { rows } = await app.pool.query(`select name, valid_since from flowwarden.flows where disabled_at is null order by name`);
  for (const r of rows) {
    const re = new RegExp(`href="/admin/flows/${r.name}">${r.name}</a>.*?<td class="since"><span class="when"><time datetime="${r.valid_since.toISOString()}"`, 's');
    assert.match(body, re, `${r.name} shows its valid_since`);
  }
});

test('the dev admin token is made once per data folder and kept across restarts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-dev-token-'));
  try {
    const first = devAdminToken(dir);
    assert.equal(first.created, true);
    assert.match(first.token, /^dev-[0-9a-f]{24}$/);
    assert.equal(fs.statSync(path.join(dir, DEV_TOKEN_FILE)).mode & 0o777, 0o600);
    const again = devAdminToken(dir);
    assert.deepEqual([again.token, again.created], [first.token, false]);
    fs.writeFileSync(path.join(dir, DEV_TOKEN_FILE), 'garbage');
    const replaced = devAdminToken(dir);
    assert.equal(replaced.created, true);
    assert.notEqual(replaced.token, first.token);
    const other = devAdminToken(fs.mkdtempSync(path.join(dir, 'other-')));
    assert.notEqual(other.token, replaced.token, 'another data folder has its own token');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
