/**
 * How long a test waits for a state before giving up. Never part of a verdict: a wait that runs out
 * means the state was not reached at all. FW_TEST_TIMEOUT_SCALE (e.g. 3; `npm run test:stress` sets
 * it) stretches every wait on a loaded machine.
 */
const SCALE = Math.max(1, Number(process.env.FW_TEST_TIMEOUT_SCALE ?? 1) || 1);

export function scaled(ms: number): number {
  return ms * SCALE;
}
