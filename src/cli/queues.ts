/** `flowwarden queues [--json]`: live job counts per pg-boss queue (flowwarden.v_queue_depth). */
import type { Base, Values } from './context.ts';
import { withReadPool } from './context.ts';
import { print, printJson, printTable } from './output.ts';
import { queueDepth, queueJson } from '../queries/inspect.ts';

/** 0 → '-', 75.2 → '1m15s', 7322 → '2h2m'. */
export function formatAge(seconds: number): string {
  if (!(seconds > 0)) return '-';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.floor(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

export async function run(base: Base, _args: string[], values: Values): Promise<void> {
  await withReadPool(base, async (pool) => {
    const queues = (await queueDepth(pool)).map(queueJson);
    if (values.json) return printJson(queues);
    printTable(
      queues.map((q) => ({ ...q, oldest: formatAge(q.oldestReadyAgeSeconds) })),
      ['queue', 'queued', 'ready', 'deferred', 'retry', 'active', 'failed', 'oldest'],
    );
    print('\nqueued = ready + deferred (start time ahead); oldest = longest wait of a ready job\n');
  });
}
