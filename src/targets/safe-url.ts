/** Target URLs as they may appear in logs and messages: tokens in the path and query masked. */

/**
 * A path segment kept in messages: lower-case words of up to 12 letters joined by `-`, `_` or `.`
 * (`api`, `run`, `hooks`, `nightly-report`), at most 32 characters, or a short number or version
 * (`v2`, `42`). Anything else — ids, random strings, a token of letters only (`xoxbQwErTyUiOpAs`,
 * `abcdefghijklmnopqrst`), bad %-escapes — is masked.
 */
const PLAIN_SEGMENT = /^(?=.{1,32}$)(?:[a-z]{1,12}(?:[-_.][a-z]{1,12})*|v?\d{1,6})$/;

function plainSegment(seg: string): boolean {
  try {
    return PLAIN_SEGMENT.test(decodeURIComponent(seg));
  } catch {
    return false; // a malformed %-escape: not a word
  }
}

/**
 * A target URL as it may appear in logs and run state messages: scheme, host and port, the path with
 * every segment that does not look like a plain word masked (`***`), and no query or fragment. A
 * token in the path (`/hooks/<token>/run`) or the query never leaves the process this way.
 */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname
      .split('/')
      .map((seg) => (seg === '' || plainSegment(seg) ? seg : '***'))
      .join('/');
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return '[invalid url]';
  }
}

/**
 * The parts of a target URL `safeUrl` hides — masked path segments and query values — to redact by
 * value from every log line. Plain words stay loggable (a flow named like its endpoint is not a secret).
 */
export function secretUrlParts(url: string): string[] {
  try {
    const u = new URL(url);
    return [
      ...u.pathname.split('/').filter((seg) => seg !== '' && !plainSegment(seg)),
      ...[...u.searchParams.values()].flatMap((v) => [v, encodeURIComponent(v)]),
    ];
  } catch {
    return [url];
  }
}
