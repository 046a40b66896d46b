/**
 * The real CLI for tests. `runCli` runs a command in this process through `cli(argv, io)`
 * (src/cli/main.ts) with its own environment and captured output: the same parsing, configuration,
 * command modules and database work as the process, without paying a Node start-up per call.
 * Commands that own the process (start, dev: signal handlers, exit codes) and the embedded Postgres
 * path (no DATABASE_URL: a server child and its signal hooks) run as a child process instead, as
 * does anything asked for with `{ spawn: true }` or a `cwd` — `spawnCli` always does.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

const baseEnv = (env: Record<string, string>) => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env });

export async function runCli(args: string[], env: Record<string, string> = {}, options: { cwd?: string; spawn?: boolean } = {}): Promise<CliResult> {
  const ownsProcess = args[0] === 'start' || args[0] === 'dev' || !env.DATABASE_URL;
  if (options.spawn || options.cwd || ownsProcess) return spawnCli(args, env, options);
  const { cli } = await import('../../src/cli/main.ts');
  let stdout = '';
  let stderr = '';
  const code = await cli(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: baseEnv(env),
  });
  return { code, stdout, stderr };
}

/** Run the CLI as a child process (the project's Node, `node src/cli/main.ts ...`). */
export function spawnCli(args: string[], env: Record<string, string> = {}, options: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd,
      env: baseEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
