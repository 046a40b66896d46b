import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { runCli, spawnCli } from './support/cli.ts';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { connectionFailure } from '../src/cli/context.ts';
import { freePort } from './support/server.ts';

let db: TestDatabase;
let pool: pg.Pool;
let dir: string;

before(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-cli-'));
});
after(async () => {
  await pool.end();
  await db.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(args, { DATABASE_URL: db.url });

function file(name: string, content: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function count(table: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.${table}`);
  return rows[0]!.n;
}

const GOOD = `
flows:
  - name: nightly-etl
    description: Loads yesterday's data
    target: { type: function, handler: noop }
    schedules:
      - name: nightly
        cron: "30 2 * * *"
        timezone: Europe/Berlin
        parameters: { source: warehouse }
  - name: every-minute
    target: { type: http, url: "http://127.0.0.1:9/run", mode: async }
    schedules:
      - { name: tick, every: 1m, overlap: skip }
`;

describe('flowwarden apply', () => {
  test('applies a YAML file idempotently and lists the flows', async () => {
    const f = file('good.yaml', GOOD);
    const first = await cli('apply', '-f', f);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /flow\s+nightly-etl\s+created/);
    const second = await cli('apply', '-f', f);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /flow\s+nightly-etl\s+updated/);
    assert.equal(await count('flows'), 2);
    assert.equal(await count('schedules'), 2);

    const list = await cli('flows', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const flows = JSON.parse(list.stdout) as Array<{ name: string; target: { type: string } }>;
    assert.deepEqual(flows.map((x) => x.name), ['every-minute', 'nightly-etl']);
    const show = await cli('flows', 'show', 'nightly-etl', '--json');
    const shown = JSON.parse(show.stdout) as { schedules: Array<{ cron: string; timezone: string; nextRunAt: string }> };
    assert.equal(shown.schedules[0]!.cron, '30 2 * * *');
    assert.equal(shown.schedules[0]!.timezone, 'Europe/Berlin');
    assert.ok(shown.schedules[0]!.nextRunAt);
  });

  test('reports every problem with its path and writes nothing', async () => {
    const flowsBefore = await count('flows');
    const schedulesBefore = await count('schedules');
    const big = 'x'.repeat(70_000);
    const f = file('bad.yaml', `
flows:
  - name: ok-flow
    target: { type: function }
    schedules: [{ name: s, every: 10s }]
  - name: bad-cron
    target: { type: function }
    schedules: [{ name: s, cron: "61 * * * *" }]
  - name: bad-tz
    target: { type: function }
    schedules: [{ name: s, cron: "0 * * * *", timezone: Mars/Base }]
  - name: ok-flow
    target: { type: function }
  - name: huge
    target: { type: function }
    schedules: [{ name: s, every: 1h, parameters: { blob: "${big}" } }]
  - name: bad-tz
    target: { type: function }
  - name: dup-schedules
    target: { type: function }
    schedules: [{ name: a, cron: "not a cron" }, { name: a, every: 10s }, { every: 1m }, { every: 2m }]
  - name: watched-and-scheduled
    target: { type: prefect, deployment: etl/prod, watch: true }
    schedules: [{ name: s, every: 1h }]
`);
    const r = await cli('apply', '-f', f);
    assert.equal(r.code, 1);
    const [first, ...details] = r.stderr.trim().split('\n');
    assert.match(first!, /^flowwarden: error: .*bad\.yaml: 9 problems, nothing was applied$/);
    const text = details.join('\n');
    assert.match(text, /flows\[1\]\.schedules\[0\]\.cron: .*minute/);
    assert.match(text, /flows\[2\]\.schedules\[0\]\.timezone: .*Mars\/Base/);
    assert.match(text, /flows\[3\]\.name: duplicate flow name 'ok-flow' \(also flows\[0\]\)/);
    assert.match(text, /flows\[4\]\.schedules\[0\]\.parameters: parameters are \d+ bytes; the limit is 65536/);
    // Duplicates are found on the raw lists, even where the entries have other errors.
    assert.match(text, /flows\[5\]\.name: duplicate flow name 'bad-tz' \(also flows\[2\]\)/);
    assert.match(text, /flows\[6\]\.schedules\[0\]\.cron: /);
    assert.match(text, /flows\[6\]\.schedules\[1\]\.name: duplicate schedule name 'a' in flow 'dup-schedules' \(also schedules\[0\]\)/);
    assert.match(text, /flows\[6\]\.schedules\[3\]\.name: duplicate schedule name 'default' in flow 'dup-schedules' \(also schedules\[2\]\)/);
    assert.match(text, /flows\[7\]\.schedules: a watched flow \(target\.watch: true\) is scheduled by Prefect itself/);
    assert.equal(details.length, 9, text);
    assert.equal(await count('flows'), flowsBefore);
    assert.equal(await count('schedules'), schedulesBefore);
  });

  test('malformed YAML is a one-line error with the line number', async () => {
    const r = await cli('apply', '-f', file('broken.yaml', 'flows:\n  - name: x\n   target: [\n'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^flowwarden: error: .*broken\.yaml: malformed YAML .*line \d+/);
  });

  test('a file without flows is an error, not a silent no-op', async () => {
    for (const [name, content] of [['empty.yaml', ''], ['comment.yaml', '# nothing here\n'], ['none.yaml', 'flows: []\n'], ['null.json', 'null']]) {
      const r = await cli('apply', '-f', file(name!, content!));
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, new RegExp(`^flowwarden: error: .*${name!.replace('.', '\\.')} has no flows: expected a top-level flows: list`), name);
    }
  });

  test('a missing file and a missing -f are clear errors', async () => {
    const missing = await cli('apply', '-f', path.join(dir, 'nope.yaml'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.yaml: ENOENT/);
    const noFlag = await cli('apply');
    assert.equal(noFlag.code, 1);
    assert.match(noFlag.stderr, /apply needs -f FILE/);
  });
});

describe('flowwarden runs', () => {
  test('trigger, list and show a run with --json', async () => {
    await cli('apply', '-f', file('good2.yaml', GOOD));
    const t = await cli('runs', 'trigger', 'nightly-etl', '--params', '{"day":"2026-11-22"}', '--idempotency-key', 'k1', '--json');
    assert.equal(t.code, 0, t.stderr);
    const run = JSON.parse(t.stdout) as { id: string; flow: string; stateType: string; stateName: string; scheduledFor: string; created: boolean };
    assert.equal(run.flow, 'nightly-etl');
    assert.equal(run.stateType, 'SCHEDULED');
    assert.equal(run.created, true);
    const again = JSON.parse((await cli('runs', 'trigger', 'nightly-etl', '--idempotency-key', 'k1', '--json')).stdout) as { id: string; created: boolean };
    assert.equal(again.id, run.id);
    assert.equal(again.created, false);

    const other = await cli('runs', 'trigger', 'every-minute', '--idempotency-key', 'k1', '--json');
    assert.equal(other.code, 1, 'a key held by another flow\'s run is a conflict, not that run');
    assert.equal(other.stdout, '');
    assert.match(other.stderr, new RegExp(`^flowwarden: error: idempotency key 'k1' is already used by run ${run.id} of flow 'nightly-etl', not flow 'every-minute'`));
    assert.equal(other.stderr.trim().split('\n').length, 1);

    const list = JSON.parse((await cli('runs', 'list', '--flow', 'nightly-etl', '--limit', '5', '--json')).stdout) as Array<Record<string, unknown>>;
    assert.equal(list.length, 1);
    for (const key of ['id', 'flow', 'scheduledFor', 'stateType', 'stateName']) assert.ok(key in list[0]!, key);
    const show = JSON.parse((await cli('runs', 'show', run.id, '--json')).stdout) as { history: Array<{ toType: string }> };
    assert.equal(show.history[0]!.toType, 'SCHEDULED');
  });

  test('bad input exits non-zero with a one-line reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['runs', 'trigger', 'no-such-flow'], /flow 'no-such-flow' not found/],
      [['runs', 'trigger', 'nightly-etl', '--params', '{oops'], /--params is not valid JSON/],
      [['runs', 'trigger', 'nightly-etl', '--at', '2026-01-01T09:00:00'], /--at '2026-01-01T09:00:00' must be an ISO 8601 time with a zone/],
      [['runs', 'trigger', 'nightly-etl', '--at', 'tomorrow'], /--at 'tomorrow' must be an ISO 8601 time with a zone/],
      [['runs', 'list', '--state', 'DONE'], /--state 'DONE' is not a state type/],
      [['runs', 'list', '--flow', 'nosuch'], /flow 'nosuch' not found/],
      [['runs', 'list', '--limit', '0'], /--limit must be a whole number/],
      [['runs', 'show', 'abc'], /runs show needs a run ID/],
      [['flows', 'show', 'nope'], /flow 'nope' not found/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['runs', 'list', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr.split('\n')[0]!, re, args.join(' '));
    }
  });

  test('a connection lost mid-command is reported as lost, not as a failure to connect; other errors pass through', () => {
    const db = { url: 'postgres://u:pw@db.internal:6543/app', embedded: false };
    const lost = connectionFailure(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), db) as Error;
    assert.match(lost.message, /^lost the connection to Postgres at db\.internal:6543 during the command/);
    assert.doesNotMatch(lost.message, /pw/);
    const refused = connectionFailure(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6543'), { code: 'ECONNREFUSED' }), db) as Error;
    assert.match(refused.message, /^cannot connect to Postgres at db\.internal:6543 \(connect ECONNREFUSED/);
    const other = new Error('relation "x" does not exist');
    assert.equal(connectionFailure(other, db), other);
  });

  test('an empty variable is unset: its default applies', async () => {
    const empty = loadConfig({ DATABASE_URL: '', FLOWWARDEN_PORT: '', FLOWWARDEN_ADMIN_TOKEN: '', PREFECT_API_URL: ' ', FLOWWARDEN_LOG_PRETTY: '' });
    assert.equal(empty.databaseUrl, undefined);
    assert.equal(empty.port, DEFAULTS.port);
    assert.equal(empty.adminToken, undefined);
    assert.equal(empty.prefect.apiUrl, undefined);
    assert.equal(empty.logPretty, false);
    const r = await runCli(['runs', 'list', '--json'], {
      DATABASE_URL: db.url, FLOWWARDEN_ADMIN_TOKEN: '', FLOWWARDEN_READ_TOKEN: '', FLOWWARDEN_HTTP_SECRET: '', PREFECT_API_URL: '',
      FLOWWARDEN_PORT: '', FLOWWARDEN_CONCURRENCY: '', FLOWWARDEN_LOG_LEVEL: '', FLOWWARDEN_NOTIFY_URLS: '',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
  });

  test('a port that accepts but never answers fails with a clear message instead of hanging', async () => {
    // Not Postgres: accepts TCP connections and never says a word (a busy FLOWWARDEN_EMBEDDED_PORT).
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const [viaUrl, embedded] = await Promise.all([
        runCli(['migrate'], { DATABASE_URL: `postgres://u:secret@127.0.0.1:${port}/db` }),
        runCli(['runs', 'list'], { FLOWWARDEN_EMBEDDED_PORT: String(port), FLOWWARDEN_DATA_DIR: path.join(dir, 'unused-data') }),
      ]);
      assert.equal(viaUrl.code, 1);
      assert.match(viaUrl.stderr, new RegExp(`^flowwarden: error: cannot connect to Postgres at 127\\.0\\.0\\.1:${port} \\(.*timeout 10 s\\): check DATABASE_URL`));
      assert.doesNotMatch(viaUrl.stderr, /secret/);
      assert.equal(embedded.code, 1);
      assert.match(embedded.stderr, new RegExp(`^flowwarden: error: cannot connect to Postgres at 127\\.0\\.0\\.1:${port} .*FLOWWARDEN_EMBEDDED_PORT`));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('start against a database that refuses connections exits 1 with the same clear message', async () => {
    const port = await freePort(); // bound, then closed: connections to it are refused
    const r = await runCli(['start'], { DATABASE_URL: `postgres://u:secret@127.0.0.1:${port}/db`, FLOWWARDEN_PORT: '0' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`flowwarden: error: cannot connect to Postgres at 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): check DATABASE_URL`));
    assert.doesNotMatch(r.stderr, /secret/);
  });

  test('an invalid environment is reported before anything runs', async () => {
    const r = await runCli(['runs', 'list'], { DATABASE_URL: 'not a url' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid environment: DATABASE_URL/);
  });
});

describe('newcomer paths', () => {
  test('runs list shows recent, running and due runs by default; --upcoming adds the future ones; --state takes a list', async () => {
    await cli('apply', '-f', file('states.yaml', `flows:\n  - name: st\n    target: { type: function, handler: noop }\n`));
    const { rows: [flow] } = await pool.query<{ id: string }>(`select id from flowwarden.flows where name = 'st'`);
    await pool.query(
      `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin) values
         ($1, now() - interval '2 hours', 'COMPLETED', 'Completed', 'manual'),
         ($1, now() - interval '1 hour', 'FAILED', 'Failed', 'manual'),
         ($1, now() - interval '50 minutes', 'CRASHED', 'Crashed', 'manual'),
         ($1, now() - interval '1 minute', 'RUNNING', 'Running', 'manual'),
         ($1, now() - interval '30 seconds', 'SCHEDULED', 'Late', 'manual'),
         ($1, now() + interval '1 hour', 'SCHEDULED', 'Scheduled', 'manual')`,
      [flow!.id],
    );
    const states = async (...args: string[]) => {
      const r = await cli('runs', 'list', '--flow', 'st', '--json', ...args);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as Array<{ stateName: string }>).map((x) => x.stateName);
    };
    assert.deepEqual(await states(), ['Late', 'Running', 'Crashed', 'Failed', 'Completed']);
    assert.deepEqual(await states('--upcoming'), ['Scheduled', 'Late', 'Running', 'Crashed', 'Failed', 'Completed']);
    assert.deepEqual(await states('--state', 'FAILED,crashed'), ['Crashed', 'Failed']);
    const bad = await cli('runs', 'list', '--state', 'FAILED,DONE');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^flowwarden: error: --state 'DONE' is not a state type; use one or several comma-separated of SCHEDULED/);
    const table = await cli('runs', 'list', '--flow', 'st');
    assert.match(table.stdout, /--upcoming also lists the runs scheduled ahead/);
  });

  test('apply names the field at fault: the timezone, a missing target', async () => {
    const r = await cli('apply', '-f', file('newcomer.yaml', `flows:
  - name: tz
    target: { type: function }
    schedules: [{ cron: "0 * * * *", timezone: Mars/Olympus }]
  - name: no-target
    schedules: [{ every: 1m }]
`));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /flows\[0\]\.schedules\[0\]\.timezone: timezone 'Mars\/Olympus' is not a known IANA timezone/);
    assert.doesNotMatch(r.stderr, /\.cron:/);
    assert.match(r.stderr, /flows\[1\]\.target: every flow needs a target: \{type: function, handler: NAME\}/);
    assert.doesNotMatch(r.stderr, /expected object/);
  });

  test('invalid environment variables are each reported once', async () => {
    const r = await runCli(['runs', 'list'], { DATABASE_URL: 'not a url', FLOWWARDEN_PORT: 'eighty' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^flowwarden: error: invalid environment: 2 variables are invalid\n/);
    assert.equal(r.stderr.split('DATABASE_URL').length - 1, 1, r.stderr);
    assert.equal(r.stderr.split('FLOWWARDEN_PORT').length - 1, 1, r.stderr);
  });

  test('an unusable FLOWWARDEN_DATA_DIR is named, and a path under /proc fails instead of hanging', async () => {
    const plain = file('plain-file', 'not a folder');
    const cases: Array<[string, RegExp]> = [
      [path.join(plain, 'data'), /FLOWWARDEN_DATA_DIR=.*plain-file\/data: .*plain-file is a file, not a folder; set FLOWWARDEN_DATA_DIR to a folder/],
      ['/proc/flowwarden-data', /FLOWWARDEN_DATA_DIR=\/proc\/flowwarden-data: \/proc is a kernel pseudo-filesystem/],
    ];
    const port = await freePort();
    for (const [dataDir, re] of cases) {
      const r = await runCli(['runs', 'list'], { FLOWWARDEN_DATA_DIR: dataDir, FLOWWARDEN_EMBEDDED_PORT: String(port) });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
    }
  });

  test('a busy API port names FLOWWARDEN_PORT', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['start', '--role', 'api'], { DATABASE_URL: db.url, FLOWWARDEN_PORT: String(port), FLOWWARDEN_HOST: '127.0.0.1' });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`flowwarden: error: the API cannot listen on 127\\.0\\.0\\.1:${port}: that port is already in use .*set FLOWWARDEN_PORT to a free port`));
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });
});

describe('the CLI as a process', () => {
  test('--help, a usage error, and a read command end to end', async () => {
    const help = await spawnCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: flowwarden <command>/);
    const usage = await spawnCli(['runs', 'list', '--bogus']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^flowwarden: error: Unknown option '--bogus'/);
    const unknown = await spawnCli(['frobnicate']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /^flowwarden: error: unknown command 'frobnicate'; run flowwarden --help\n$/);
    const list = await spawnCli(['flows', 'list', '--json'], { DATABASE_URL: db.url });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(Array.isArray(JSON.parse(list.stdout)));
  });
});
