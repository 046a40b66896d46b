/**
 * One soak pod in its own process (bench/soak.ts forks three): a flowwarden app with every role on
 * the database in argv[2], configured by the environment the parent passes. On 'stop-tick' it stops
 * ticking and reports its created/deleted counters; on 'stop' it drains and exits.
 */
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';

const url = process.argv[2];
if (!url || !process.send) throw new Error('bench/pods/soak-pod.ts is forked by bench/soak.ts with the database URL as its argument');
const config = loadConfig(process.env, { port: 0, host: '127.0.0.1', concurrency: Number(process.env.BENCH_SOAK_CONCURRENCY ?? 20) });
const app = await createApp({ config, log: silentLogger, databaseUrl: url, roles: ['scheduler', 'worker'], migrate: false });

async function counter(name: string, label?: string): Promise<number> {
  const m = await app.deps.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => !label || v.labels.table === label).reduce((n, v) => n + v.value, 0);
}

process.on('message', (msg: string) => {
  void (async () => {
    if (msg === 'stop-tick') {
      await app.scheduler.stop();
      process.send!({ created: await counter('flowwarden_runs_created_total'), deletedRuns: await counter('flowwarden_retention_deleted_rows_total', 'runs') });
    } else if (msg === 'stop') {
      await app.stop({ timeoutMs: 2000 });
      process.exit(0);
    }
  })();
});
process.send({ ready: true });
