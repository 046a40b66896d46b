/**
 * Where the database is: DATABASE_URL when set, otherwise the shared embedded server.
 */
import type { Config } from '../config.ts';
import { ensureEmbeddedPostgres } from './embedded.ts';
import type { Logger } from '../log.ts';

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it and no other process uses it. */
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
  return {
    url: handle.url,
    embedded: true,
    release: async () => {
      const outcome = await handle.release();
      if (outcome.action === 'left-running') {
        log?.warn(
          { port: config.embeddedPort, otherSessions: outcome.otherSessions, applications: outcome.applications },
          outcome.otherSessions < 0
            ? `embedded Postgres left running: ${outcome.applications.join(', ')}`
            : `embedded Postgres left running: ${outcome.otherSessions} session(s) of other processes still use it (${outcome.applications.join(', ')})`,
        );
      } else if (outcome.action === 'stopped') {
        log?.info({ port: config.embeddedPort }, 'stopped embedded Postgres');
      }
    },
  };
}
