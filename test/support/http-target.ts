/**
 * A local HTTP endpoint standing in for a service that runs flows: verifies flowwarden's HMAC
 * signature (401 when wrong), records every call, and answers with a scripted status sequence.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature, SIGNATURE_HEADER } from '../../src/targets/http.ts';

export interface RecordedCall {
  body: Record<string, unknown>;
  raw: string;
  headers: http.IncomingHttpHeaders;
  signatureValid: boolean;
}

export interface FakeTarget {
  url: string;
  calls: RecordedCall[];
  /** Statuses to answer with, in order; when exhausted, `fallback` is used. 'reset' drops the connection. */
  script: Array<number | 'reset' | { status: number; body: unknown }>;
  fallback: number | { status: number; body: unknown };
  close(): Promise<void>;
}

export async function startFakeTarget(secret: string): Promise<FakeTarget> {
  const state: Omit<FakeTarget, 'url' | 'close'> = { calls: [], script: [], fallback: 200 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signatureValid = verifySignature(raw, req.headers[SIGNATURE_HEADER] as string | undefined, secret);
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        // recorded as empty
      }
      state.calls.push({ body, raw, headers: req.headers, signatureValid });
      if (!signatureValid) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad signature' }));
        return;
      }
      const next = state.script.length ? state.script.shift()! : state.fallback;
      if (next === 'reset') {
        req.socket.destroy();
        return;
      }
      const { status, body: out } = typeof next === 'number' ? { status: next, body: { ok: status_ok(next) } } : next;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state as FakeTarget, {
    url: `http://127.0.0.1:${port}/run`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}

function status_ok(status: number): boolean {
  return status >= 200 && status < 300;
}
