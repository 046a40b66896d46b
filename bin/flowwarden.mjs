#!/usr/bin/env node
// flowwarden runs TypeScript sources directly with Node's type stripping (Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`flowwarden: error: Node ${process.versions.node} is too old; run it through npm (npx flowwarden / npm run flowwarden), which uses the project's pinned Node 24, or install Node >= 22.18`);
  process.exit(1);
}
await import('../src/cli/main.ts');
