/** What every route gets: the worker deps plus the API's own (built once in src/api/server.ts). */
import type { WorkerDeps } from '../workers/types.ts';
import type { ReadRouter } from '../db/topology.ts';

export interface ApiContext extends WorkerDeps {
  databaseUrl: string;
  /** Where GET handlers read (src/api/reads.ts readDb): a replica when FLOWWARDEN_READ_URL is set. */
  reads: ReadRouter;
}
