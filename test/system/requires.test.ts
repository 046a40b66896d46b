import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireProgram } from './requires.ts';

test('a missing Debian program fails with the command that installs it', () => {
  assert.throws(() => requireProgram('/nonexistent/pgbouncer', 'pgbouncer'), /apt-get install -y pgbouncer/);
  assert.equal(requireProgram('/bin/sh', 'dash'), '/bin/sh');
});
