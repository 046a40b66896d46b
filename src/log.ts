/**
 * The one pino root. Everything else takes `log.child({ ... })`. Secrets are redacted twice:
 * - by path (fields named token, apiKey, secret, webhookUrl, authorization, target.url, ...);
 * - by value, on every line just before it is written: the values registered with
 *   `registerSecrets` (createApp registers the config's tokens, keys and webhook URLs; components
 *   that load secrets at runtime, e.g. a channel URL from the database, register those) are
 *   replaced wherever they appear: messages, error stacks, nested fields, pretty output.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'token',
  'apiKey',
  'api_key',
  'secret',
  'url',
  'webhookUrl',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.token',
  '*.apiKey',
  '*.secret',
  '*.webhookUrl',
  '*.authorization',
  'config.adminToken',
  'config.readToken',
  'config.httpSecret',
  'config.prefect.apiKey',
  'config.notifyUrls',
  'config.databaseUrl',
  'config.directUrl',
  'config.readUrl',
  'notifyUrls',
  'databaseUrl',
  'connectionString',
  'password',
  '*.password',
  'target.url',
  'target.secret',
  'target.headers',
  '*.target.url',
  '*.target.secret',
  '*.target.headers',
];

/** Secret values (and their recognisable parts) redacted from every line by value. */
const knownSecrets = new Set<string>();
let sortedSecrets: string[] = [];

/** Shorter values are not treated as secrets (they would redact ordinary words). */
const MIN_SECRET_LENGTH = 8;

/** The forms a secret may appear in: itself, JSON-escaped, and for URLs the parts that carry the secret. */
function secretForms(value: string): string[] {
  const forms = [value, JSON.stringify(value).slice(1, -1)];
  try {
    const u = new URL(value);
    forms.push(u.href);
    // A database URL is redacted whole only: its password may be an ordinary word ('flowwarden').
    if (u.protocol === 'http:' || u.protocol === 'https:') {
      // Webhook tokens live in the path (Discord /api/webhooks/ID/TOKEN, Slack /services/T/B/TOKEN)
      // or the query (?token=...): long path segments and every query value are secret-bearing.
      for (const seg of u.pathname.split('/')) if (seg.length >= 16) forms.push(seg);
      for (const [, v] of u.searchParams) forms.push(v, encodeURIComponent(v));
      if (u.search) forms.push(u.search);
    }
  } catch {
    // not a URL
  }
  return forms.filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/** Redact these values from every log line written by loggers from `createLogger`, process-wide. */
export function registerSecrets(values: Iterable<string | null | undefined>): void {
  let added = false;
  for (const v of values) {
    if (!v) continue;
    for (const f of secretForms(v)) {
      if (!knownSecrets.has(f)) {
        knownSecrets.add(f);
        added = true;
      }
    }
  }
  // Longest first, so a whole URL is replaced before any of its parts.
  if (added) sortedSecrets = [...knownSecrets].sort((a, b) => b.length - a.length);
}

function redactKnown(line: string): string {
  if (sortedSecrets.length === 0) return line;
  let out = line;
  for (const s of sortedSecrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
  return out;
}

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  destination?: NodeJS.WritableStream | pino.DestinationStream;
  /** Secret values to redact (also see registerSecrets). */
  secrets?: Array<string | null | undefined>;
}

export function createLogger(options: LogOptions = {}): Logger {
  if (options.secrets) registerSecrets(options.secrets);
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { app: 'flowwarden' },
    hooks: { streamWrite: redactKnown },
  };
  if (options.pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,app', translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  if (options.destination) return pino(base, options.destination);
  return pino(base);
}

/** Replace every occurrence of the given secret values (tokens, URLs) in text. */
export function redactSecrets(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 6) out = out.split(s).join('[redacted]');
  return out;
}

/** A silent logger for tests and library use without logging. */
export const silentLogger: Logger = pino({ level: 'silent' });
