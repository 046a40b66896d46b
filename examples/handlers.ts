/**
 * Handlers for examples/flows.yaml, for a pod started from this checkout:
 *
 *   npm run dev -- --handlers examples/handlers.ts             # or FLOWWARDEN_HANDLERS=examples/handlers.ts
 *   npm run flowwarden -- apply -f examples/flows.yaml         # in another terminal
 *
 * A handlers module's default export maps handler names to functions (src/targets/function.ts).
 * examples/service.ts shows the other way: a service that embeds a worker and calls defineFlow.
 */
import type { FlowHandler } from '../src/targets/function.ts';

/** nightly-report: builds the report; its task results feed the guard (criticalTasks: load-warehouse). */
const buildReport: FlowHandler = async (ctx) => {
  ctx.log.info({ parameters: ctx.parameters }, 'building the report');
  return {
    message: `report built (${String(ctx.parameters.format ?? 'pdf')})`,
    tasks: [
      { name: 'load-warehouse', stateType: 'COMPLETED' },
      { name: 'render', stateType: 'COMPLETED' },
    ],
  };
};

export default { 'build-report': buildReport };
