import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, NotFoundError, UserInputError } from '../errors.ts';
import { InvalidTransitionError } from '../runs/states.ts';

const PG_INPUT_ERRORS: Record<string, string> = {
  '22P05': 'unsupported character, e.g. \\u0000',
  '22021': 'invalid byte sequence',
  '22P02': 'invalid text representation',
  '22003': 'number out of range',
  '22007': 'invalid date/time',
  '22008': 'date/time out of range',
  '54001': 'nested too deep',
};

/** The SQLSTATE of a pg error, also when wrapped (drizzle's DrizzleQueryError keeps it in `cause`). */
function pgCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** Map domain errors onto HTTP: 404 unknown, 409 invalid transition or conflict, 400 bad input, 500 otherwise. */
export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof NotFoundError) return reply.code(404).send({ error: 'not_found', message: err.message });
  if (err instanceof InvalidTransitionError) return reply.code(409).send({ error: 'invalid_transition', message: err.message });
  if (err instanceof ConflictError) return reply.code(409).send({ error: 'conflict', message: err.message });
  if (err instanceof UserInputError) return reply.code(400).send({ error: 'invalid_request', message: err.message, details: err.details });
  const fe = err as FastifyError;
  if (fe.validation) return reply.code(400).send({ error: 'invalid_request', message: fe.message });
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.code(fe.statusCode).send({ error: 'invalid_request', message: fe.message });
  }
  // Postgres refusing a value (class 22: NUL in text, bad encoding, out of range; 54001: too deep)
  // is the caller's input, not our fault: 400, without the statement or its parameters.
  const code = pgCode(err);
  if (code && (code.startsWith('22') || code === '54001')) {
    req.log.warn({ err, code }, 'request refused by the database');
    return reply.code(400).send({ error: 'invalid_request', message: `the database refused a value in this request (${PG_INPUT_ERRORS[code] ?? `SQLSTATE ${code}`}); check for NUL characters, out-of-range numbers or malformed values` });
  }
  // Never put SQL, parameters or internal messages in a response: they go to the log only.
  req.log.error({ err }, 'request failed');
  return reply.code(500).send({ error: 'internal', message: `internal error (request ${req.id}); the server log has the details` });
}
