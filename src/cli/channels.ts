/**
 * `flowwarden channels list|add|remove|test`: notification channels (docs/notifications.md).
 * Output never contains a webhook URL: `list` shows the origin only ("https://discord.com/…").
 */
import type { Base, Values } from './context.ts';
import { withPool, withReadPool } from './context.ts';
import { UserInputError } from '../errors.ts';
import { checkChannelFlows, deleteChannel, listChannels, upsertChannel, type ChannelView } from '../notify/operations.ts';
import { print, printJson, printTable } from './output.ts';

const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

function row(c: ChannelView): Record<string, unknown> {
  return {
    ...c,
    events: c.events.join(','),
    flows: c.flows ? c.flows.join(',') : 'all',
    backlog: c.pendingEvents === undefined ? undefined : `${c.pendingEvents} events, ${c.pendingMessages} messages`,
  };
}

export async function run(base: Base, [sub, ...args]: string[], values: Values): Promise<void> {
  if (sub === 'list' || sub === undefined) {
    await withReadPool(base, async (pool) => {
      const channels = await listChannels(pool);
      if (values.json) return printJson(channels);
      printTable(channels.map(row), ['name', 'kind', 'url', 'events', 'flows', 'backlog', 'failedMessages', 'lastDeliveredAt']);
    });
    return;
  }
  if (sub === 'add') {
    const [name, url] = args;
    if (!name || !url) throw new UserInputError('channels add needs NAME and URL (a Discord, Slack or webhook URL, or console)');
    if (args.length > 2) throw new UserInputError(`channels add takes NAME and URL only; got ${args.length} arguments (quote the URL?)`);
    await withPool(base, async (pool) => {
      await checkChannelFlows(pool, name, list(values.flow));
      const { channel, created } = await upsertChannel(pool, { name, url, events: list(values.events), flows: list(values.flow) ?? null });
      if (values.json) return printJson({ ...channel, created });
      print(`${created ? 'added' : 'updated'} channel ${channel.name} (${channel.kind} ${channel.url}): events ${channel.events.join(',')}; flows ${channel.flows?.join(',') ?? 'all'}\n`);
    });
    return;
  }
  if (sub === 'remove') {
    const name = args[0];
    if (!name) throw new UserInputError('channels remove needs a channel NAME (flowwarden channels list)');
    await withPool(base, async (pool) => {
      await deleteChannel(pool, name);
      print(`removed channel ${name}\n`);
    });
    return;
  }
  if (sub === 'test') {
    const name = args[0];
    if (!name) throw new UserInputError('channels test needs a channel NAME (flowwarden channels list)');
    const [{ startBoss }, { withTransaction }, { notifyTx }] = await Promise.all([import('../queue/boss.ts'), import('../db/client.ts'), import('../notify/operations.ts')]);
    await withPool(base, async (pool, c) => {
      const boss = await startBoss({ connectionString: c.db.url, role: 'producer' });
      try {
        await withTransaction(pool, (tx) => notifyTx(boss, tx, name, `flowwarden test message for channel ${name}`));
      } finally {
        await boss.stop({ graceful: false });
      }
      print(`queued a test message for ${name}; a running worker posts it within a few seconds\n`);
    });
    return;
  }
  throw new UserInputError(`unknown channels command '${sub}'; use list, add, remove or test`);
}
