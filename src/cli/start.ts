/** `flowwarden start`: run a pod (src/cli/pod.ts). */
import { ROLES, type Role } from '../config.ts';
import { UserInputError } from '../errors.ts';
import { loadHandlersModule } from '../targets/function.ts';
import type { Base, Values } from './context.ts';
import { runPod } from './pod.ts';

export async function run(base: Base, _args: string[], values: Values): Promise<void> {
  const roles = (values.role ?? ['all']) as Role[];
  for (const r of roles) {
    if (!(ROLES as readonly string[]).includes(r)) throw new UserInputError(`--role '${r}' is not a role; use ${ROLES.join(', ')}`);
  }
  const handlers = values.handlers ?? base.config.handlersModule;
  if (handlers) await loadHandlersModule(handlers);
  await runPod(base, roles);
}
