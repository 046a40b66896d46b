import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkStructure, findCircles, headerLines } from '../scripts/check-structure.ts';

test('the leading comment counts comment lines before the first line of code, shebang and blanks aside', () => {
  assert.equal(headerLines('#!/usr/bin/env node\n/**\n * one\n * two\n */\n\nimport x from "y";\n/** not header */\n'), 4);
  assert.equal(headerLines('// a\n// b\n\n// c\nconst x = 1;\n'), 3);
  assert.equal(headerLines('/* a */ const x = 1;\n// later\n'), 1);
  assert.equal(headerLines('import x from "y";\n// later\n'), 0);
});

test('an import circle is reported once per set of files, as a path back to its first file', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['e']],
  ]);
  assert.deepEqual(findCircles(graph), [
    { files: ['a', 'b', 'c'], cycle: ['a', 'b', 'c', 'a'] },
    { files: ['e'], cycle: ['e', 'e'] },
  ]);
  assert.deepEqual(findCircles(new Map([['a', ['b']], ['b', []]])), []);
});

test('the structure check names a long file, a long header and a circle, with how to fix each', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-structure-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'long.ts'), 'export const x = 1;\n'.repeat(401));
  fs.writeFileSync(path.join(dir, 'header.ts'), `${'// why\n'.repeat(11)}export const y = 1;\n`);
  fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './sub/b.ts';\nexport const a = b;\n");
  fs.writeFileSync(path.join(dir, 'sub', 'b.ts'), "import type { a } from '../a.ts';\nexport const b = 1 as typeof a;\n");
  fs.writeFileSync(path.join(dir, 'ok.ts'), "// fine\nimport { a } from './a.ts';\nexport const ok = a;\n".concat('\n'.repeat(390)));
  const findings = checkStructure([dir]).map((f) => ({ ...f, file: path.relative(dir, f.file) }));
  assert.deepEqual(findings.map((f) => [f.file, f.what]), [
    ['header.ts', 'leading comment is 11 lines (limit 10)'],
    ['long.ts', '401 lines (limit 400)'],
    ['a.ts', `import circle: ${path.join(dir, 'a.ts')} → ${path.join(dir, 'sub', 'b.ts')} → ${path.join(dir, 'a.ts')}`],
  ]);
  for (const f of findings) assert.match(f.fix, /\w{3,}/);
});
