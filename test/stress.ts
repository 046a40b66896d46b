/**
 * `npm run test:stress`: the whole suite (`npm test`) while CPU-bound processes compete for the
 * cores, several rounds in a row; it passes only if every round passes. A test whose verdict
 * depends on how fast the machine is fails here.
 *
 *   STRESS_ROUNDS=3   rounds of the whole suite (default 3)
 *   STRESS_HOGS=2     busy-looping processes running alongside (default 2)
 *   npm run test:stress -- test/pool.test.ts   # only some files, same load
 *
 * Waits in the tests (waitFor and the like) get FW_TEST_TIMEOUT_SCALE=3 unless set: a slower
 * machine may take longer to reach a state, never a different one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROUNDS = Number(process.env.STRESS_ROUNDS ?? 3);
const HOGS = Number(process.env.STRESS_HOGS ?? 2);
const RUN = path.resolve(import.meta.dirname, 'run.ts');

const hogs: ChildProcess[] = [];
for (let i = 0; i < HOGS; i++) {
  hogs.push(spawn(process.execPath, ['-e', 'for (;;) Math.sqrt(Math.random());'], { stdio: 'ignore' }));
}
const stopHogs = () => {
  for (const h of hogs) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
};
process.on('exit', stopHogs);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    stopHogs();
    process.exit(130);
  });
}

const results: Array<{ round: number; code: number; seconds: number }> = [];
for (let round = 1; round <= ROUNDS; round++) {
  console.log(`# stress round ${round}/${ROUNDS}: the suite with ${HOGS} CPU hog(s) running`);
  const started = Date.now();
  const child = spawn(process.execPath, [RUN, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, FW_TEST_TIMEOUT_SCALE: process.env.FW_TEST_TIMEOUT_SCALE ?? '3' },
  });
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  results.push({ round, code, seconds: Math.round((Date.now() - started) / 1000) });
  console.log(`# stress round ${round}/${ROUNDS}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${results.at(-1)!.seconds} s`);
}
stopHogs();
const failed = results.filter((r) => r.code !== 0);
console.log(`# stress: ${ROUNDS - failed.length}/${ROUNDS} rounds passed (${results.map((r) => `${r.seconds} s`).join(', ')})`);
process.exit(failed.length ? 1 : 0);
