/**
 * An HTTP run endpoint that misbehaves on purpose, for the target-fault scenario. Each call is
 * recorded (run id from the body, the idempotency-key header, the attempt number, signature check,
 * start/end time and what the endpoint did) and answered with one of:
 *   burst  — 503 for every call inside a burst window (BURST_MS every BURST_EVERY_MS);
 *   hang   — no answer at all until the caller gives up (longer than FLOWWARDEN_HTTP_TIMEOUT_MS);
 *   reset  — the TCP connection is destroyed without an answer;
 *   5xx    — 500 or 502;
 *   2xx    — 200 { ok: true }: the run succeeded on this call.
 * Choices come from the scenario's seeded random source.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature, SIGNATURE_HEADER } from '../../src/targets/http.ts';

export type Fault = 'burst' | 'hang' | 'reset' | '5xx' | '2xx' | 'bad-signature';

export interface TargetCall {
  runId: string;
  key: string | undefined;
  attempt: number;
  signatureValid: boolean;
  fault: Fault;
  startedAt: number;
  endedAt: number | undefined;
}

export interface FaultyTarget {
  url: string;
  calls: TargetCall[];
  close(): Promise<void>;
}

export const BURST_MS = 1500;
export const BURST_EVERY_MS = 7000;

export async function startFaultyTarget(secret: string, rand: () => number, odds = { hang: 0.08, reset: 0.08, fail: 0.12 }): Promise<FaultyTarget> {
  const calls: TargetCall[] = [];
  const born = Date.now();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: { runId?: string; attempt?: number } = {};
      try {
        body = JSON.parse(raw) as typeof body;
      } catch {
        // recorded with an empty run id
      }
      const signatureValid = verifySignature(raw, req.headers[SIGNATURE_HEADER] as string | undefined, secret);
      const call: TargetCall = {
        runId: String(body.runId ?? ''),
        key: req.headers['idempotency-key'] as string | undefined,
        attempt: Number(body.attempt ?? -1),
        signatureValid,
        fault: '2xx',
        startedAt: Date.now(),
        endedAt: undefined,
      };
      calls.push(call);
      const end = () => (call.endedAt ??= Date.now());
      // 'close' fires when the answer is sent, and when the connection drops without one (reset, or
      // the caller giving up on a hung call).
      res.on('close', end);
      if (!signatureValid) {
        call.fault = 'bad-signature';
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad signature"}');
        return;
      }
      const r = rand();
      const inBurst = (Date.now() - born) % BURST_EVERY_MS < BURST_MS;
      if (inBurst) call.fault = 'burst';
      else if (r < odds.hang) call.fault = 'hang';
      else if (r < odds.hang + odds.reset) call.fault = 'reset';
      else if (r < odds.hang + odds.reset + odds.fail) call.fault = '5xx';
      switch (call.fault) {
        case 'hang':
          return; // the caller times out and closes the connection
        case 'reset':
          req.socket.destroy();
          return;
        case 'burst':
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}');
          return;
        case '5xx':
          res.writeHead(rand() < 0.5 ? 500 : 502, { 'content-type': 'application/json' }).end('{"error":"boom"}');
          return;
        default:
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      }
    });
  });
  // Hung requests keep their sockets; never let the server's own timeouts answer for us.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/run`,
    calls,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
