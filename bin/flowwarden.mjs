#!/usr/bin/env node
// In this checkout flowwarden runs its TypeScript sources directly (Node's type stripping, Node >= 22.18);
// an installed package has no src/ and runs the compiled dist/ (`npm run build`, done by `npm pack`).
import { existsSync } from 'node:fs';
import module from 'node:module';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`flowwarden: error: Node ${process.versions.node} is too old; run it through npm (npx flowwarden / npm run flowwarden), which uses the project's pinned Node 24, or install Node >= 22.18`);
  process.exit(1);
}
// Cache compiled code on disk: later starts skip parsing (Node >= 22.1).
module.enableCompileCache?.();
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(source) ? source.href : new URL('../dist/cli/main.js', import.meta.url).href);
await main(process.argv.slice(2));
