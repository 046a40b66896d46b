/**
 * A headless Chromium for browser tests that needs nothing outside `npm ci`: the devDependency
 * `@sparticuz/chromium` ships a compressed Chromium (x64 Linux) inside the package; it is unpacked
 * once into node_modules/.cache/flowwarden-chromium/<version>/ and launched with playwright-core.
 *
 * FLOWWARDEN_TEST_CHROMIUM=/usr/bin/chromium (or any Chromium/Chrome binary) uses that browser
 * instead, e.g. on a platform the package has no build for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Flags for a browser of the user's choosing (Debian's Chromium and the like). */
const OWN_BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/**
 * Unpack the package's Chromium into a folder of its own. The package unpacks into os.tmpdir(), so
 * it runs with TMPDIR pointed at a private staging folder, which is then renamed into place: several
 * test processes (or checkouts) starting at once never see a half-written binary.
 */
async function packagedChromium(): Promise<{ executablePath: string; args: string[] }> {
  // The package exports no ./package.json: find it from its entry point (build/index.js).
  const entry = createRequire(import.meta.url).resolve('@sparticuz/chromium');
  const version = (JSON.parse(fs.readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version;
  const { default: Chromium } = await import('@sparticuz/chromium');
  const cache = path.join(ROOT, 'node_modules', '.cache', 'flowwarden-chromium');
  const final = path.join(cache, version);
  const executablePath = path.join(final, 'chromium');
  if (!fs.existsSync(executablePath)) {
    fs.mkdirSync(cache, { recursive: true });
    const staging = fs.mkdtempSync(path.join(cache, `${version}.staging-`));
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = staging;
    try {
      const unpacked = await Chromium.executablePath();
      if (path.dirname(unpacked) !== staging) throw new Error(`@sparticuz/chromium unpacked to ${unpacked}, expected a file under ${staging}`);
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
    try {
      fs.renameSync(staging, final);
    } catch (err) {
      // Another process put its copy in place first: use that one.
      fs.rmSync(staging, { recursive: true, force: true });
      if (!fs.existsSync(executablePath)) throw err;
    }
  }
  // --single-process is for one-page serverless runs: a second browser context (one per test)
  // finds the browser closed. Everything else is the package's own tuning.
  return { executablePath, args: Chromium.args.filter((a: string) => a !== '--single-process') };
}

export async function launchBrowser(): Promise<Browser> {
  const own = process.env.FLOWWARDEN_TEST_CHROMIUM;
  if (own) {
    if (!fs.existsSync(own)) throw new Error(`FLOWWARDEN_TEST_CHROMIUM=${own}: no such file; point it at a Chromium binary or unset it to use the one from @sparticuz/chromium`);
    return chromium.launch({ executablePath: own, args: OWN_BROWSER_ARGS, timeout: 60_000 });
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`@sparticuz/chromium has no Chromium for ${process.platform}/${process.arch}: set FLOWWARDEN_TEST_CHROMIUM to a Chromium or Chrome binary`);
  }
  const { executablePath, args } = await packagedChromium();
  return chromium.launch({ executablePath, args, headless: true, timeout: 60_000 });
}
