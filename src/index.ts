/** Public API: flat and small. */
export { FlowwardenClient } from './producers/client.ts';
export { defineFlow, HandlerRegistry, type FlowHandler } from './targets/function.ts';
export { createApp, type App, type AppOptions, type Role } from './app.ts';
export { loadConfig, type Config } from './config.ts';
export { verifySignature, signBody, SIGNATURE_HEADER } from './targets/http.ts';
export type { StateType } from './types.ts';
export type { FlowInputRaw as FlowDefinition, ScheduleInputRaw as ScheduleDefinition } from './flows/spec.ts';
