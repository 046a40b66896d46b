/**
 * 3. Scheduler scale: SCHEDULES active schedules, all `* * * * *` (every fire of every schedule
 *    lands on the same second — the worst case), ticked for MINUTES minutes of simulated time in
 *    1-second steps. Each tick's wall time advances the simulated clock when it is longer than the
 *    step, so a scheduler that cannot keep up accumulates lag instead of hiding it.
 *    Fire lag = when the run and its dispatch job were committed − the fire time (0 when the run was
 *    pre-created ahead of its fire time inside the horizon).
 */
import pg from 'pg';
import { Scheduler } from '../src/maintenance/tick.ts';
import { startBoss } from '../src/queue/boss.ts';
import { createPool } from '../src/db/client.ts';
import { silentLogger } from '../src/log.ts';
import { benchServer, fmt, freshDatabase, log, percentile, type BenchResult } from './support.ts';

const SCHEDULES = Number(process.env.BENCH_SCHEDULES ?? 100_000);
const MINUTES = Number(process.env.BENCH_MINUTES ?? 10);
const HORIZON = Number(process.env.BENCH_HORIZON_SECONDS ?? 30);
const CLAIM_BATCH = Number(process.env.BENCH_CLAIM_BATCH ?? 1000);

export async function benchSchedulerScale(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const db = await freshDatabase();
  const pool = createPool(db.url, { max: 4 });
  const boss = await startBoss({ connectionString: db.url, role: 'producer' });
  try {
    const T0 = new Date(Date.UTC(2026, 10, 22, 10, 0, 0));
    log(`scheduler scale: creating ${SCHEDULES} schedules`);
    await pool.query(`insert into flowwarden.flows (name, target) select 'f' || g, '{"type":"function","handler":"noop"}' from generate_series(1, 100) g`);
    await pool.query(
      `insert into flowwarden.schedules (flow_id, name, kind, cron, timezone, next_run_at, catchup)
       select f.id, 's' || g, 'cron', '* * * * *', 'UTC', $2, 'skip'
         from generate_series(1, $1) g join flowwarden.flows f on f.name = 'f' || (1 + g % 100)`,
      [SCHEDULES, T0],
    );
    await pool.query('analyze');
    // Start a little before the first fire so the horizon can pre-create it.
    let simMs = T0.getTime() - (HORIZON + 1) * 1000;
    const endMs = T0.getTime() + MINUTES * 60_000;
    const lags: number[] = [];
    const tickMs: number[] = [];
    let created = 0;
    let createdWallMs = 0;
    let tickStart = 0;
    const onBatch = ({ runs }: { runs: Array<{ scheduledFor: Date }> }) => {
      // Commit happened "now" in simulated time: simMs + elapsed wall time of this tick so far.
      const committedAt = simMs + (performance.now() - tickStart);
      for (const r of runs) lags.push(Math.max(0, committedAt - r.scheduledFor.getTime()));
    };
    const scheduler = new Scheduler({ pool, boss, log: silentLogger, onBatch }, { intervalMs: 1000, horizonSeconds: HORIZON, catchupGraceSeconds: 30, claimBatch: CLAIM_BATCH });
    let maxBacklog = 0;
    while (simMs <= endMs) {
      tickStart = performance.now();
      const res = await scheduler.runOnce({ now: new Date(simMs) });
      const wall = performance.now() - tickStart;
      tickMs.push(wall);
      if (res.created > 0) {
        created += res.created;
        createdWallMs += wall;
      }
      // Backlog: schedules whose next fire is already in the (simulated) past after the tick.
      const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.schedules where next_run_at < $1`, [new Date(simMs)]);
      maxBacklog = Math.max(maxBacklog, rows[0]!.n);
      simMs += Math.max(1000, wall);
    }
    lags.sort((a, b) => a - b);
    tickMs.sort((a, b) => a - b);
    const firesPerSecond = created / (createdWallMs / 1000);
    const p99 = percentile(lags, 99);
    return {
      name: 'scheduler-scale',
      title: `Scheduler scale (${SCHEDULES.toLocaleString('en')} schedules, all every minute, ${MINUTES} simulated minutes)`,
      machine,
      settings: { schedules: SCHEDULES, minutes: MINUTES, horizonSeconds: HORIZON, claimBatch: CLAIM_BATCH, pods: 1 },
      rows: [
        { metric: 'fire lag p99 (fire time → run + dispatch job committed)', ours: `${fmt(p99 / 1000, 2)} s`, target: '<= 2 s', met: p99 <= 2000 },
        { metric: 'fire lag p50', ours: `${fmt(percentile(lags, 50) / 1000, 2)} s` },
        { metric: 'tick throughput (fires materialised per second of tick time)', ours: `${fmt(firesPerSecond, 0)} fires/s` },
        { metric: "runs created (every fire from T0 to the end, incl. the horizon)", ours: String(created), target: String(SCHEDULES * (MINUTES + 1)), met: created === SCHEDULES * (MINUTES + 1) },
        { metric: 'largest backlog after a tick (schedules past due)', ours: String(maxBacklog), target: '0 (no growing backlog)', met: maxBacklog === 0 },
        { metric: 'slowest tick', ours: `${fmt(tickMs[tickMs.length - 1]! / 1000, 2)} s` },
      ],
      raw: { created, createdWallMs, maxBacklog, tickP50: percentile(tickMs, 50), tickMax: tickMs[tickMs.length - 1] },
      at: new Date().toISOString(),
    };
  } finally {
    await boss.stop({ graceful: false });
    await pool.end();
    await db.drop();
  }
}

export const benches = { 'scheduler-scale': benchSchedulerScale };
void pg;
