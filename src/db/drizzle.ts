/**
 * drizzle-orm, loaded through `require`.
 *
 * Why: on Node 24, importing drizzle-orm's ESM build (its `export *` barrels) costs ~170 MB of heap
 * per process — measured: `import('drizzle-orm/node-postgres')` takes a fresh process from 40 MB to
 * 280 MB RSS, while `require` of the same modules costs ~10 MB (Node 20's ESM loader does not show
 * it). A worker pod's memory budget is 150 MB, so every runtime use of drizzle goes through this
 * module; types still come from normal `import type`. drizzle-kit (CommonJS) loads the schema with
 * its own `require`, which this also supports.
 */
import { createRequire } from 'node:module';
import type * as Orm from 'drizzle-orm';
import type * as PgCore from 'drizzle-orm/pg-core';
import type * as NodePg from 'drizzle-orm/node-postgres';
import type * as Migrator from 'drizzle-orm/node-postgres/migrator';

declare const require: NodeJS.Require | undefined;
const load: NodeJS.Require = typeof require === 'function' ? require : createRequire(import.meta.url);

export const orm = load('drizzle-orm') as typeof Orm;
export const pgCore = load('drizzle-orm/pg-core') as typeof PgCore;
export const nodePg = load('drizzle-orm/node-postgres') as typeof NodePg;
export const migrator = load('drizzle-orm/node-postgres/migrator') as typeof Migrator;
