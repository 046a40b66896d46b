import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, NotFoundError, UserInputError, errorMessage } from '../errors.ts';
import { InvalidTransitionError } from '../runs/states.ts';

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
  req.log.error({ err }, 'request failed');
  return reply.code(500).send({ error: 'internal', message: errorMessage(err) });
}
