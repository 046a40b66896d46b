/**
 * System tests use real software from Debian's packages. A missing program fails the test with the
 * command that installs it: this suite never passes a test it could not run.
 */
import fs from 'node:fs';

export function requireProgram(file: string, debianPackage: string): string {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: this system test needs Debian's ${debianPackage}. Install it with: apt-get install -y ${debianPackage} (.ci/run does this)`);
  }
  return file;
}
