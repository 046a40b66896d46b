/**
 * Soak (issue 14): three pods (separate processes, bench/pods/soak-pod.ts, all roles) fire SCHEDULES every-second schedules
 * for MINUTES minutes of real time with a 2-minute run retention and 2-minute pg-boss job
 * retention; table and database sizes are sampled every SAMPLE_SECONDS. The run table must plateau
 * (retention deletes as fast as the tick creates) while exactly-once holds: every fire time from
 * each schedule's first to its last fire is created exactly once (runs created, summed over the
 * pods' flowwarden_runs_created_total, equals the fires due; the unique index rules out a second
 * run), and the runs still retained have no gap.
 *
 * BENCH_SOAK_SCHEDULES (1000), BENCH_SOAK_MINUTES (20), BENCH_SOAK_SAMPLE_SECONDS (30).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { tableSizes } from '../src/queries/retention.ts';
import { benchServer, fmt, freshDatabase, log, type BenchResult } from './support.ts';

const SCHEDULES = Number(process.env.BENCH_SOAK_SCHEDULES ?? 1000);
const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 20);
const SAMPLE_SECONDS = Number(process.env.BENCH_SOAK_SAMPLE_SECONDS ?? 30);
const PODS = 3;
const RETENTION_SECONDS = 120;

interface Sample {
  minute: number;
  runs: number;
  runsMiB: number;
  historyMiB: number;
  jobsMiB: number;
  databaseMiB: number;
  open: number;
  /** Open runs more than 5 s past their fire time: dispatch falling behind, not the tick's horizon. */
  behind: number;
}

/** A pod in its own process, as in production (three pods in one Node thread measure that thread). */
async function forkPod(url: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(new URL('./pods/soak-pod.ts', import.meta.url), [url], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [msg] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => { throw new Error('a soak pod exited before it was ready'); })])) as [unknown];
  if (!(msg as { ready?: boolean }).ready) throw new Error(`unexpected message from a soak pod: ${JSON.stringify(msg)}`);
  return child;
}

async function ask<T>(child: ChildProcess, msg: string): Promise<T> {
  const reply = once(child, 'message');
  child.send(msg);
  return (await reply)[0] as T;
}

export async function benchSoak(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const db = await freshDatabase();
  const admin = new pg.Pool({ connectionString: db.url, max: 2 });
  const pods: ChildProcess[] = [];
  try {
    const start = (await admin.query<{ t: Date }>(`select date_trunc('second', now()) + interval '10 seconds' as t`)).rows[0]!.t;
    await admin.query(`insert into flowwarden.flows (name, target) select 'soak-' || g, '{"type":"function","handler":"noop"}' from generate_series(1, 10) g`);
    await admin.query(
      `insert into flowwarden.schedules (flow_id, name, kind, interval_seconds, anchor, next_run_at, catchup, catchup_window_seconds, catchup_max)
       select f.id, 's' || g, 'interval', 1, $2, $2, 'all', 3600, 1000
         from generate_series(1, $1) g join flowwarden.flows f on f.name = 'soak-' || (1 + g % 10)`,
      [SCHEDULES, start],
    );
    const env = { FLOWWARDEN_RUN_RETENTION_SECONDS: String(RETENTION_SECONDS), FLOWWARDEN_NOTIFY_RETENTION_SECONDS: String(RETENTION_SECONDS), FLOWWARDEN_JOB_RETENTION_SECONDS: String(RETENTION_SECONDS), FLOWWARDEN_RETENTION_INTERVAL_SECONDS: '10' };
    log(`soak: ${PODS} pods, ${SCHEDULES} every-second schedules, ${MINUTES} min, retention ${RETENTION_SECONDS} s`);
    for (let i = 0; i < PODS; i++) pods.push(await forkPod(db.url, env));
    const samples: Sample[] = [];
    const t0 = Date.now();
    const endAt = t0 + MINUTES * 60_000;
    while (Date.now() < endAt) {
      await new Promise((r) => setTimeout(r, Math.min(SAMPLE_SECONDS * 1000, endAt - Date.now())));
      const sizes = await tableSizes(admin);
      const mib = (t: string) => (sizes.tables.find((x) => x.table === t)?.totalBytes ?? 0) / 2 ** 20;
      const { rows } = await admin.query<{ runs: number; open: number; behind: number }>(
        `select count(*)::int as runs, count(*) filter (where state_type in ('SCHEDULED', 'PENDING', 'RUNNING'))::int as open,
                count(*) filter (where state_type in ('SCHEDULED', 'PENDING', 'RUNNING') and scheduled_for < now() - interval '5 seconds')::int as behind
           from flowwarden.runs`,
      );
      const s: Sample = {
        minute: (Date.now() - t0) / 60_000, runs: rows[0]!.runs, open: rows[0]!.open, behind: rows[0]!.behind,
        runsMiB: mib('flowwarden.runs'), historyMiB: mib('flowwarden.run_state_history'), jobsMiB: mib('flowwarden_queue.job'), databaseMiB: sizes.databaseBytes / 2 ** 20,
      };
      samples.push(s);
      log(`soak: ${fmt(s.minute, 1)} min: ${s.runs} runs (${s.open} open, ${s.behind} behind), runs ${fmt(s.runsMiB, 1)} MiB, history ${fmt(s.historyMiB, 1)} MiB, jobs ${fmt(s.jobsMiB, 1)} MiB, database ${fmt(s.databaseMiB, 0)} MiB`);
    }
    // Stop ticking first, then let the rest drain; every fire up to each schedule's last_run_at is due.
    const counts = await Promise.all(pods.map((p) => ask<{ created: number; deletedRuns: number }>(p, 'stop-tick')));
    const created = counts.reduce((n, c) => n + c.created, 0);
    const due = Number((await admin.query(`select sum(extract(epoch from last_run_at - $1::timestamptz)::bigint + 1) as n from flowwarden.schedules where last_run_at is not null`, [start])).rows[0].n);
    const dupes = Number((await admin.query(`select count(*) as n from (select 1 from flowwarden.runs where schedule_id is not null group by schedule_id, scheduled_for having count(*) > 1) d`)).rows[0].n);
    // Gaps among the retained runs: per schedule, consecutive retained fire times more than 1 s apart.
    const gaps = Number((await admin.query(
      `select count(*) as n from (
         select scheduled_for - lag(scheduled_for) over (partition by schedule_id order by scheduled_for) as d
           from flowwarden.runs where schedule_id is not null and scheduled_for > (select max(scheduled_for) from flowwarden.runs) - interval '${RETENTION_SECONDS - 20} seconds') x
        where d > interval '1 second'`,
    )).rows[0].n);
    const deletedRuns = counts.reduce((n, c) => n + c.deletedRuns, 0);
    const half = samples.filter((s) => s.minute >= Math.min(MINUTES / 2, 5));
    const maxOf = (f: (s: Sample) => number, xs: Sample[]) => Math.max(...xs.map(f));
    const last = samples[samples.length - 1]!;
    // Plateau: the last sample is no bigger than 1.25x the largest sample of the first half past warm-up.
    const early = samples.filter((s) => s.minute >= 4 && s.minute <= Math.max(5, MINUTES / 2));
    const plateau = early.length > 0 && last.runs <= 1.25 * maxOf((s) => s.runs, early) && last.databaseMiB <= 1.25 * maxOf((s) => s.databaseMiB, early);
    return {
      name: 'soak',
      title: `Soak (${PODS} pods, ${SCHEDULES.toLocaleString('en')} every-second schedules, ${MINUTES} min, ${RETENTION_SECONDS} s retention)`,
      machine,
      settings: { pods: PODS, schedules: SCHEDULES, minutes: MINUTES, retentionSeconds: RETENTION_SECONDS, jobRetentionSeconds: RETENTION_SECONDS, sampleSeconds: SAMPLE_SECONDS },
      rows: [
        { metric: 'runs created (sum over pods) vs fires due', ours: created.toLocaleString('en'), peer: due.toLocaleString('en'), target: 'equal (none lost)', met: created === due },
        { metric: 'duplicate runs per (schedule, fire time)', ours: String(dupes), target: '0', met: dupes === 0 },
        { metric: 'gaps among retained runs', ours: String(gaps), target: '0', met: gaps === 0 },
        { metric: 'runs deleted by retention', ours: deletedRuns.toLocaleString('en') },
        { metric: 'runs table rows at the end / max after warm-up', ours: `${last.runs.toLocaleString('en')} / ${maxOf((s) => s.runs, half).toLocaleString('en')}`, target: 'plateau', met: plateau },
        { metric: 'database size at the end / max after warm-up', ours: `${fmt(last.databaseMiB, 0)} MiB / ${fmt(maxOf((s) => s.databaseMiB, half), 0)} MiB` },
        ...samples.map((s) => ({ metric: `size at ${fmt(s.minute, 1)} min`, ours: `${s.runs.toLocaleString('en')} runs (${s.open} open, ${s.behind} behind); runs ${fmt(s.runsMiB, 1)} MiB, history ${fmt(s.historyMiB, 1)} MiB, jobs ${fmt(s.jobsMiB, 1)} MiB, db ${fmt(s.databaseMiB, 0)} MiB` })),
      ],
      raw: { samples, created, due, dupes, gaps, deletedRuns },
      at: new Date().toISOString(),
    };
  } finally {
    await Promise.all(pods.map(async (p) => {
      if (p.exitCode !== null) return;
      const exited = once(p, 'exit');
      p.send('stop');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }));
    await admin.end();
    await db.drop();
  }
}

export const benches = { soak: benchSoak };
