/**
 * The admin page end to end in a real browser (playwright-core driving the Chromium that the
 * devDependency @sparticuz/chromium ships, or FLOWWARDEN_TEST_CHROMIUM; test/support/browser.ts):
 * sign in, find the flow the guard disabled, open it, reactivate it through the confirm dialog, and
 * check the database. Nothing outside `npm ci` is needed; a browser that cannot start fails this
 * file rather than skipping it.
 *
 * SCREENSHOTS=1 also writes docs/admin-overview.png, docs/admin-flow.png, docs/admin-runs.png and
 * docs/admin-flow-history.png.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser } from './support/browser.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx, reportRunStateTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { lockFlowByName } from '../src/queries/guard.ts';
import { disableLockedFlow } from '../src/guard/operations.ts';
import { seedAdminHistory } from './support/admin-seed.ts';

const SHOTS = process.env.SCREENSHOTS === '1';

let app: TestApp;
let browser: Browser | undefined;

before(async () => {
  app = await startTestApp({ roles: ['api'], start: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

async function failedRun(flow: string, message: string): Promise<void> {
  await withTransaction(app.pool, async (tx) => {
    const { runId } = await triggerRunTx(app.boss, tx, flow, {});
    await reportRunStateTx(app.deps.transitions, tx, runId, 'RUNNING');
    await reportRunStateTx(app.deps.transitions, tx, runId, 'FAILED', { message });
  });
}

/** A flow the guard disabled after three consecutive failures, as the health worker does it. */
async function flowDisabledByGuard(name: string): Promise<void> {
  await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, {
      name,
      description: 'Syncs invoices from the billing provider',
      target: { type: 'function' },
      schedules: [
        { name: 'hourly', cron: '0 * * * *' },
        { name: 'nightly-full', cron: '30 2 * * *', timezone: 'Europe/Berlin' },
      ],
    }),
  );
  for (let i = 1; i <= 3; i++) await failedRun(name, `HTTP 503 from billing API (attempt ${i})`);
  await withTransaction(app.pool, async (tx) => {
    const flow = await lockFlowByName(tx, name);
    await disableLockedFlow(app.boss, tx, flow!, {
      reason: '3 consecutive failures (last: HTTP 503 from billing API (attempt 3))',
      rule: 'consecutive_failures',
      by: 'guard',
      evidence: {},
    });
  });
}

test('an operator signs in, finds the flow the guard disabled and reactivates it', async () => {
  await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, { name: 'daily-report', target: { type: 'function' }, schedules: [{ name: 'morning', cron: '0 9 * * *', timezone: 'Europe/London' }] }),
  );
  await flowDisabledByGuard('billing-sync');
  const state0 = (await app.pool.query(`select disabled_at from flowwarden.flows where name = 'billing-sync'`)).rows[0];
  assert.ok(state0.disabled_at, 'precondition: the flow is disabled');

  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));

  // Not signed in: the overview sends us to the login form.
  await page.goto(`${app.address}/admin`);
  assert.match(page.url(), /\/admin\/login$/);
  await page.fill('input[name="token"]', 'wrong-token');
  await page.click('button[type="submit"]');
  assert.match(await page.textContent('.err') ?? '', /not valid/);
  await page.fill('input[name="token"]', TEST_ADMIN_TOKEN);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${app.address}/admin`);
  problems.length = 0; // the refused sign-in above logs its 401; from here on nothing may fail

  // The overview lists the disabled flow with the guard's reason.
  const disabled = page.locator('#disabled');
  await disabled.getByRole('link', { name: 'billing-sync' }).waitFor();
  assert.match(await disabled.textContent() ?? '', /3 consecutive failures/);
  assert.match(await page.locator('#failing').textContent() ?? '', /HTTP 503 from billing API/);
  assert.match(await page.locator('#due').textContent() ?? '', /daily-report/);
  if (SHOTS) await page.screenshot({ path: path.join('docs', 'admin-overview.png'), fullPage: true });

  // The flow page: disabled banner, health rule at its threshold, schedules held off.
  await disabled.getByRole('link', { name: 'billing-sync' }).click();
  await page.waitForURL(/\/admin\/flows\/billing-sync$/);
  assert.equal(await page.textContent('h1'), 'billing-sync');
  assert.match(await page.textContent('#disabled-banner') ?? '', /Disabled by the guard/);
  assert.match(await page.textContent('#health') ?? '', /3 \/ 3/);
  assert.match(await page.textContent('#schedules') ?? '', /held disabled by flowwarden guard/);
  if (SHOTS) {
    await page.fill('input[name="by"]', 'Dana Ops');
    await page.screenshot({ path: path.join('docs', 'admin-flow.png'), fullPage: true });
  }

  // Reactivate: the name goes with it, and the browser asks first.
  await page.fill('input[name="by"]', 'Dana Ops');
  let asked = '';
  page.once('dialog', async (dialog) => {
    asked = dialog.message();
    await dialog.accept();
  });
  await page.click('#disabled-banner button[type="submit"]');
  await page.locator('#notice').waitFor();
  assert.match(asked, /Reactivate flow billing-sync\?/);
  assert.match(asked, /Dana Ops/);
  assert.match(await page.textContent('#notice') ?? '', /Flow reactivated/);
  assert.equal(await page.locator('#disabled-banner').count(), 0);
  assert.match(await page.textContent('#health') ?? '', /0 \/ 3/);
  assert.match(await page.textContent('#guard-history') ?? '', /Dana Ops \(admin page\)/);

  // The run page shows the state history.
  await page.locator('#runs a.mono').first().click();
  await page.locator('#history').waitFor();
  assert.match(await page.textContent('#history') ?? '', /Running[\s\S]*Failed/);

  await page.goto(`${app.address}/admin/queues`);
  assert.match(await page.textContent('main') ?? '', /fw\.dispatch/);

  assert.deepEqual(problems, [], 'no console errors or CSP violations');
  await page.close();

  // The database agrees.
  const flow = (await app.pool.query(`select disabled_at, disabled_reason from flowwarden.flows where name = 'billing-sync'`)).rows[0];
  assert.equal(flow.disabled_at, null);
  const holds = (await app.pool.query(`select reactivated_at, reactivated_by from flowwarden.disabled_flows where flow_name = 'billing-sync'`)).rows;
  assert.equal(holds.length, 1);
  assert.ok(holds[0].reactivated_at);
  assert.equal(holds[0].reactivated_by, 'Dana Ops (admin page)');
  const schedules = (await app.pool.query(
    `select s.name, s.enabled from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id where f.name = 'billing-sync' order by s.name`,
  )).rows;
  assert.deepEqual(schedules, [{ name: 'hourly', enabled: true }, { name: 'nightly-full', enabled: true }]);
});

test('the pictures and the runs page render in the browser, with the database\'s numbers and local times', async () => {
  await seedAdminHistory(app.pool);
  // The nightly ETL held by the guard (its pre-created runs were cancelled: the seed has them).
  await withTransaction(app.pool, async (tx) => {
    const flow = await lockFlowByName(tx, 'etl-nightly');
    await disableLockedFlow(app.boss, tx, flow!, { reason: 'critical task load_orders failed: warehouse connection refused', rule: 'critical_task', by: 'guard', evidence: {} });
  });
  // A viewer in New York: times other than schedule times show in that zone.
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'America/New_York', locale: 'en-US' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${app.address}/admin/login`);
  await page.fill('input[name="token"]', TEST_ADMIN_TOKEN);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${app.address}/admin`);
  await page.locator('html[data-localized="1"]').waitFor({ state: 'attached' });

  // The chart: every bar drawn, its segments the database's counts.
  const chart = page.locator('#runs-chart');
  assert.ok((await chart.boundingBox())!.height > 100, 'the chart is drawn at a readable size');
  const drawn = await page.$$eval('#runs-chart a.bar rect', (rects) =>
    rects.map((r) => `${r.parentElement!.getAttribute('data-minute')} ${r.getAttribute('data-state')} ${r.getAttribute('data-count')}`).sort());
  const since = await chart.getAttribute('data-since');
  const until = await chart.getAttribute('data-until');
  const { rows } = await app.pool.query<{ line: string }>(
    `select to_char(date_trunc('minute', scheduled_for) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI":00.000Z"') || ' ' ||
            case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end || ' ' || count(*) as line
       from flowwarden.runs where scheduled_for >= $1 and scheduled_for < $2
      group by date_trunc('minute', scheduled_for), case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end`,
    [since, until],
  );
  assert.deepEqual(drawn, rows.map((r) => r.line).sort());
  const failed = (await app.pool.query(`select count(*)::int as n from flowwarden.runs where state_type = 'FAILED' and scheduled_for >= $1 and scheduled_for < $2`, [since, until])).rows[0].n;
  assert.equal(await page.locator('#chart-legend li[data-state="FAILED"] strong').textContent(), String(failed));
  // Local time: the database time is shown in New York's zone, UTC on hover.
  const dbTime = page.locator('.sub time[data-local]').first();
  assert.match(await dbTime.textContent() ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (EST|EDT)$/);
  assert.match(await dbTime.getAttribute('title') ?? '', / UTC$/);
  if (SHOTS) await page.screenshot({ path: path.join('docs', 'admin-overview.png'), fullPage: true });

  // "What failed in the last hour, across everything?"
  await page.getByRole('link', { name: 'What failed in the last hour →' }).click();
  await page.waitForURL(/\/admin\/runs\?/);
  const listed = await page.$$eval('#runs-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
  const expected = (await app.pool.query(
    `select id from flowwarden.runs where state_type in ('FAILED', 'CRASHED') and scheduled_for >= now() - interval '1 hour' and scheduled_for <= now() order by scheduled_for desc, id desc`,
  )).rows.map((r) => r.id);
  assert.deepEqual(listed, expected);
  if (SHOTS) await page.screenshot({ path: path.join('docs', 'admin-runs.png'), fullPage: true });

  // The flow page: the strip's newest cell (at the right) opens the newest due run.
  await page.goto(`${app.address}/admin/flows/ping-fast`);
  const cells = page.locator('#run-strip a');
  assert.equal(await cells.count(), 40);
  const newest = (await app.pool.query(
    `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'ping-fast' and r.scheduled_for <= now() order by r.scheduled_for desc, r.id desc limit 1`,
  )).rows[0].id;
  const boxes = await cells.evaluateAll((as) => as.map((a) => ({ id: a.getAttribute('data-run'), x: a.getBoundingClientRect().x })));
  assert.equal(boxes.reduce((a, b) => (b.x > a.x ? b : a)).id, newest, 'the rightmost cell is the newest run');
  if (SHOTS) await page.screenshot({ path: path.join('docs', 'admin-flow-history.png'), fullPage: true });
  await cells.last().click();
  await page.waitForURL(new RegExp(`/admin/runs/${newest}$`));

  // A flow crowded by cancelled runs keeps them folded.
  await page.goto(`${app.address}/admin/flows/etl-nightly`);
  assert.equal(await page.locator('#cancelled-runs').getAttribute('open'), null, 'folded');
  assert.equal(await page.locator('#cancelled-runs tr[data-run]').first().isVisible(), false);
  await page.locator('#cancelled-runs summary').click();
  assert.equal(await page.locator('#cancelled-runs tr[data-run]').count(), 8);
  assert.match(await page.locator('#disabled-banner').textContent() ?? '', /warehouse connection refused/);

  assert.deepEqual(problems, [], 'no console errors or CSP violations');
  await context.close();
});
