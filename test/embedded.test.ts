import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { freePort } from './support/server.ts';

/**
 * The embedded Postgres is shared by every process on the machine that has no DATABASE_URL. These
 * tests run the real thing: a child process starts the server through resolveDatabase (so it owns
 * it), then releases it and exits, with or without another process (this one) still connected.
 */
const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/embedded-owner.ts');
let dataDir: string;

before(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-embedded-'));
  fs.chmodSync(dataDir, 0o755); // as root, Postgres runs as 'postgres' and must reach it
});
after(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface Owner {
  child: ChildProcessWithoutNullStreams;
  next(): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startOwner(port: number): Owner {
  const child = spawn(process.execPath, [FIXTURE, dataDir, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    next: async () => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`owner exited early (code ${await exited})`);
      return JSON.parse(value) as Record<string, unknown>;
    },
  };
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** The postmaster's pid, from the postmaster.pid file Postgres keeps in its data folder. */
function postmasterPid(): number | null {
  const file = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!fs.existsSync(file)) return null;
  return Number(fs.readFileSync(file, 'utf8').split('\n')[0]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's group id (Linux: /proc/PID/stat, the field after the state and the parent pid). */
function processGroup(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('embedded Postgres shared by several processes', () => {
  test('the server runs in a process group of its own, so a Ctrl-C in the terminal reaches the pod (which drains) and not the database', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
    const port = await freePort();
    const owner = startOwner(port);
    await owner.next();
    const pid = postmasterPid()!;
    try {
      assert.notEqual(processGroup(pid), processGroup(owner.child.pid!), 'not in the group of the process that started it');
      assert.equal(processGroup(pid), pid, 'the postmaster leads its own group');
    } finally {
      owner.child.stdin.write('release\n');
      await owner.next();
      assert.equal(await owner.exited, 0);
    }
    assert.equal(alive(pid), false, 'release still stops it');
  });

  test('a server that died under its owner: release reports it stopped instead of failing the command', async () => {
    const port = await freePort();
    const owner = startOwner(port);
    await owner.next();
    const pid = postmasterPid()!;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    owner.child.stdin.write('release\n');
    assert.deepEqual(await owner.next(), { released: true, warnings: [] });
    assert.equal(await owner.exited, 0);
  });

  test('the process that started it stops it on exit when nobody else is connected', async () => {
    const port = await freePort();
    const owner = startOwner(port);
    const { url, embedded } = await owner.next();
    assert.equal(embedded, true);
    const pid = postmasterPid();
    assert.ok(pid && alive(pid), 'the owner started a server');
    owner.child.stdin.write('release\n');
    assert.deepEqual(await owner.next(), { released: true, warnings: [] });
    assert.equal(await owner.exited, 0);
    // server.stop() waited for the postmaster to exit before release() returned.
    assert.equal(alive(pid), false);
    await assert.rejects(connect(url as string), /ECONNREFUSED/);
  });

  test("stopping the process that started it does not take the database away from another process's sessions", async () => {
    const port = await freePort();
    const owner = startOwner(port);
    const { url } = await owner.next();
    const pid = postmasterPid()!;
    const other = await connect(url as string); // another pod / terminal, connected before the owner stops
    try {
      owner.child.stdin.write('release\n');
      const released = await owner.next();
      assert.equal(await owner.exited, 0);
      assert.equal((released.warnings as string[]).length, 1);
      assert.match((released.warnings as string[])[0]!, /^embedded Postgres left running: 1 session\(s\) of other processes still use it/);

      // The owner has exited (and its exit hook ran): the server and our session are still there.
      assert.ok(alive(pid));
      assert.equal((await other.query('select 1 as one')).rows[0].one, 1);
      const fresh = await connect(url as string);
      assert.equal((await fresh.query('select 2 as two')).rows[0].two, 2);
      await fresh.end();
    } finally {
      // Nobody owns it any more: stop it as an operator would (SIGINT: fast shutdown), and wait for
      // the postmaster to be gone before the data folder is removed.
      if (alive(pid)) {
        const ended = new Promise<void>((resolve) => other.once('end', () => resolve()));
        process.kill(pid, 'SIGINT');
        await ended;
        // The postmaster is not our child: no exit event to wait on, so watch its pid.
        const deadline = Date.now() + 30_000;
        while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(alive(pid), false, 'the postmaster stopped');
      } else {
        await other.end().catch(() => {});
      }
    }
  });
});
