/**
 * How to run the `flowwarden` command where this process runs, for hints in messages: in a checkout
 * (the TypeScript sources run directly) it is `npm run flowwarden --`; from an installed package
 * (compiled dist/) `npx flowwarden`, which finds a local or global install alike.
 */
import { fileURLToPath } from 'node:url';

const FROM_SOURCES = fileURLToPath(import.meta.url).endsWith('.ts');

export function cliCommand(): string {
  return FROM_SOURCES ? 'npm run flowwarden --' : 'npx flowwarden';
}
