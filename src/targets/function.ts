/**
 * `function` targets: handlers registered in the worker process. A service embedding flowwarden
 * calls `defineFlow(name, handler)`; the CLI loads a handlers module (FLOWWARDEN_HANDLERS or
 * --handlers) whose default export is a `{ name: handler }` map, or which calls defineFlow itself.
 *
 * A handler's return value may carry a message and task results; throwing fails the run with the
 * error's message. Function runs are not idempotent, so a run whose worker died mid-handler is
 * CRASHED on redelivery rather than run again (see docs/state-machine.md).
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import type { RunContext, Target, TargetOutcome } from '../types.ts';
import type { TaskInput } from '../types.ts';
import { PermanentError, UserInputError } from '../errors.ts';

export type FlowHandlerResult = void | { message?: string; tasks?: TaskInput[] };
export type FlowHandler = (ctx: RunContext) => Promise<FlowHandlerResult> | FlowHandlerResult;

export class HandlerRegistry {
  readonly #handlers = new Map<string, FlowHandler>();

  define(name: string, handler: FlowHandler): this {
    if (!name.trim()) throw new UserInputError('defineFlow: the handler name must not be empty');
    if (typeof handler !== 'function') throw new UserInputError(`defineFlow('${name}'): handler must be a function`);
    this.#handlers.set(name, handler);
    return this;
  }

  get(name: string): FlowHandler | undefined {
    return this.#handlers.get(name);
  }

  names(): string[] {
    return [...this.#handlers.keys()].sort();
  }
}

/** The process-wide registry the CLI and embedding services use. */
export const defaultRegistry = new HandlerRegistry();

export function defineFlow(name: string, handler: FlowHandler): void {
  defaultRegistry.define(name, handler);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    }, { once: true });
  });

/** Built-ins for demos and smoke tests: noop, shadow, sleep ({ ms }), fail ({ message, tasks }). */
export function registerBuiltins(registry: HandlerRegistry): void {
  registry.define('noop', () => ({ message: 'noop' }));
  // Shadow mode (docs/celery-beat.md): the run row records the fire; nothing is dispatched.
  registry.define('shadow', (ctx) => ({ message: `shadow: fire of ${ctx.flow} at ${ctx.scheduledFor.toISOString()} recorded, nothing dispatched` }));
  registry.define('sleep', async (ctx) => {
    const ms = Number(ctx.parameters.ms ?? 1000);
    await sleep(Number.isFinite(ms) ? ms : 1000, ctx.signal);
    return { message: `slept ${ms} ms` };
  });
  registry.define('fail', (ctx) => {
    const message = typeof ctx.parameters.message === 'string' ? ctx.parameters.message : 'failed on purpose (built-in fail handler)';
    const err = new Error(message) as Error & { tasks?: TaskInput[] };
    if (Array.isArray(ctx.parameters.tasks)) err.tasks = ctx.parameters.tasks as TaskInput[];
    throw err;
  });
}
registerBuiltins(defaultRegistry);

export async function loadHandlersModule(modulePath: string, registry: HandlerRegistry = defaultRegistry): Promise<void> {
  const url = pathToFileURL(path.resolve(modulePath)).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new UserInputError(`could not load handlers module ${modulePath}: ${(err as Error).message}`);
  }
  if (mod.default && typeof mod.default === 'object') {
    for (const [name, fn] of Object.entries(mod.default as Record<string, unknown>)) {
      registry.define(name, fn as FlowHandler);
    }
  }
}

export async function runFunctionTarget(registry: HandlerRegistry, handlerName: string, ctx: RunContext): Promise<TargetOutcome> {
  const handler = registry.get(handlerName);
  if (!handler) {
    throw new PermanentError(
      `no handler '${handlerName}' is registered in this worker (registered: ${registry.names().join(', ') || 'none'}); ` +
        `register it with defineFlow('${handlerName}', fn) or load a module with --handlers`,
    );
  }
  try {
    const result = await handler(ctx);
    return { kind: 'completed', message: result?.message, tasks: result?.tasks };
  } catch (err) {
    const e = err as Error & { tasks?: TaskInput[] };
    return { kind: 'failed', message: e?.message ?? String(err), tasks: e?.tasks };
  }
}

/** The `function` Target: the claim has already recorded the run RUNNING (src/dispatch/claim.ts). */
export function functionTarget(registry: HandlerRegistry): Target {
  return {
    dispatch: (_run, flow, ctx) => runFunctionTarget(registry, (flow.target.type === 'function' ? flow.target.handler : undefined) ?? flow.name, ctx),
  };
}
