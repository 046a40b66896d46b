/**
 * The `flowwarden` command line: a thin dispatcher. Each command lives in its own module under
 * src/cli/ and is imported only when it runs, so `--help` and usage errors load nothing but this
 * file, and read commands (runs list, flows list/show) load pg and drizzle but neither pg-boss nor
 * fastify. Every command exits non-zero with a one-line reason on failure (`flowwarden: error: ...`),
 * followed by detail lines when there are several problems.
 *
 * Adding a command: a module exporting `run(base, args, values)` (CommandModule, context.ts), one
 * line in COMMANDS, its usage line(s) in USAGE.
 */
import module from 'node:module';
import { parseArgs } from 'node:util';
import { OPTIONS } from './options.ts';
import type { CommandModule } from './context.ts';
import { UserInputError, errorMessage } from '../errors.ts';
import { io as currentIo, withIo, type CliIo } from './output.ts';

// Cache compiled code on disk (node_modules/.cache or the OS temp dir): later starts skip parsing.
module.enableCompileCache?.();

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  start: () => import('./start.ts'),
  dev: () => import('./dev.ts'),
  migrate: () => import('./migrate.ts'),
  apply: () => import('./apply.ts'),
  flows: () => import('./flows.ts'),
  runs: () => import('./runs.ts'),
  queues: () => import('./queues.ts'),
  channels: () => import('./channels.ts'),
  status: () => import('./status.ts'),
  import: () => import('./import-celery-beat.ts'),
};

const USAGE = `usage: flowwarden <command> [options]

  start [--role all|scheduler|worker|api] [--handlers FILE]   run a pod (roles may repeat)
  dev [--handlers FILE]                                        embedded Postgres + demo flows
  migrate                                                      apply domain and queue migrations
  apply -f FILE                                                upsert flows and schedules (YAML/JSON)
  flows list|show NAME [--json] [--limit N]
  flows disable NAME --reason TEXT [--by WHO] | reactivate NAME --by WHO [--json]
  runs list [--flow NAME] [--state TYPE[,TYPE]] [--upcoming] [--limit N] [--json]
                                                               recent, running and due runs; --upcoming adds future ones
  runs show ID [--json]
  runs trigger FLOW [--params JSON] [--idempotency-key KEY] [--at ISO] [--json]
  queues [--json]
  status [--json]                                              retention settings and table sizes
  channels list [--json]
  channels add NAME URL|console [--events e1,e2|all] [--flow NAME[,NAME]] [--json]
  channels remove NAME
  channels test NAME                                           queue a test message (a worker posts it)
  import celery-beat --from URL [--mapping FILE] [--dry-run|--watch|--compare]   (import --help)

Without DATABASE_URL every command uses the embedded Postgres under FLOWWARDEN_DATA_DIR.`;

/**
 * Run one command with `io` for its environment and output; returns the exit code. The process
 * entry point passes the process's own; tests run commands in-process with buffers.
 */
export async function cli(argv: string[], io: CliIo = currentIo()): Promise<number> {
  return withIo(io, () => dispatch(argv, io));
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`flowwarden: error: ${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  const load = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (values.help || !command) {
    // A command with options of its own (import) has its own --help; the rest share USAGE.
    const own = values.help && load ? (await load()).usage : undefined;
    io.stdout.write(`${own ?? USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  if (!load) {
    io.stderr.write(`flowwarden: error: unknown command '${command}'; run flowwarden --help\n`);
    return 2;
  }
  try {
    const [{ configSecrets, loadConfig }, { createLogger }, commandModule] = await Promise.all([import('../config.ts'), import('../log.ts'), load()]);
    const config = loadConfig(io.env);
    const pretty = command === 'dev' || config.logPretty;
    const quiet = !['start', 'dev'].includes(command);
    const destination = io.stdout === process.stdout ? undefined : { write: (s: string) => io.stdout.write(s) };
    const log = createLogger({ level: quiet ? 'warn' : config.logLevel, pretty, secrets: configSecrets(config), destination });
    await commandModule.run({ config, log }, args, values);
    return 0;
  } catch (err) {
    const details = err instanceof UserInputError ? err.details : [];
    io.stderr.write(`flowwarden: error: ${errorMessage(err)}\n`);
    for (const d of details) io.stderr.write(`  - ${d}\n`);
    return 1;
  }
}

/** The process entry point (bin/flowwarden.mjs, `node src/cli/main.ts`). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<never> {
  const code = await cli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env });
  // start/dev return after a drained shutdown; everything else is done.
  process.exit(code);
}

if (import.meta.main) await main();
