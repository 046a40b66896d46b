/**
 * A LISTEN connection that survives database restarts: on error it reconnects with backoff and
 * calls `onWake` once after every (re)connect, since notifications sent while it was away are lost.
 * Notifications are only latency hints; polling remains the correctness floor.
 */
import pg from 'pg';
import type { Logger } from '../log.ts';
import { CONNECT_TIMEOUT_MS } from './client.ts';

export const DISPATCH_CHANNEL = 'flowwarden_dispatch';

export class Listener {
  readonly #url: string;
  readonly #channel: string;
  readonly #onWake: () => void;
  readonly #log: Logger;
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(url: string, channel: string, onWake: () => void, log: Logger) {
    this.#url = url;
    this.#channel = channel;
    this.#onWake = onWake;
    this.#log = log;
  }

  async start(): Promise<void> {
    await this.#connect(0).catch(() => {});
  }

  async #connect(attempt: number): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.#url, application_name: 'flowwarden-listen', keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    const retry = (err: unknown) => {
      if (this.#stopped) return;
      client.removeAllListeners();
      client.end().catch(() => {});
      if (this.#client === client) this.#client = undefined;
      const delay = Math.min(10_000, 250 * 2 ** attempt);
      this.#log.debug({ err, delay }, 'LISTEN connection lost; reconnecting');
      this.#retry = setTimeout(() => void this.#connect(attempt + 1).catch(() => {}), delay);
      this.#retry.unref?.();
    };
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    client.on('notification', () => this.#onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
      this.#client = client;
      this.#onWake();
    } catch (err) {
      retry(err);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = undefined;
    if (c) {
      c.removeAllListeners();
      c.on('error', () => {});
      await c.end().catch(() => {});
    }
  }
}
