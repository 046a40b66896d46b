/**
 * Where the database is: DATABASE_URL when set, otherwise the shared embedded server.
 */
import type { Config } from '../config.ts';
import { ensureEmbeddedPostgres } from './embedded.ts';
import type { Logger } from '../log.ts';

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it. */
  release(): Promise<void>;
}

export async function resolveDatabase(config: Config, log?: Logger): Promise<ResolvedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, release: async () => {} };
  const handle = await ensureEmbeddedPostgres({
    dataDir: config.dataDir,
    port: config.embeddedPort,
    onLog: (line) => log?.trace({ postgres: line.trim() }, 'embedded postgres'),
  });
  if (handle.owned) log?.info({ dataDir: config.dataDir, port: config.embeddedPort }, 'started embedded Postgres');
  return { url: handle.url, embedded: true, release: () => handle.stop() };
}
