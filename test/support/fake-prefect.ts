/**
 * The fake Prefect server lives in src/prefect/fake-server.ts so `flowwarden dev --prefect-fake`
 * can start it without importing test code; tests keep importing it from here.
 */
export * from '../../src/prefect/fake-server.ts';
