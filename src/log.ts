/**
 * The one pino root. Everything else takes `log.child({ ... })`. Secrets are redacted by path
 * (tokens, keys, webhook URLs) and by value: `redactSecrets` strips known secret values from
 * messages before they are logged.
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
];

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { app: 'flowwarden' },
  };
  if (options.pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,app', translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  if (options.destination) return pino(base, options.destination as pino.DestinationStream);
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
