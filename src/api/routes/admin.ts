/**
 * The admin web page (/admin): server-rendered HTML, one small script (/admin/app.js: confirm
 * dialogs), inline CSS allowed by a per-response CSP nonce, no external assets.
 *
 * Auth: POST /admin/login takes an API token and sets a signed session cookie (see
 * admin/session.ts). Read-scope sessions see everything; reactivating needs an operate session
 * and the form's CSRF value. Pages without a session redirect to the login form.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../server.ts';
import { ADMIN_JS, html, layout, type LayoutOptions, type Markup } from '../admin/html.ts';
import { flowPage, flowsPage, loginPage, overviewPage, queuesPage, runPage } from '../admin/pages.ts';
import { cookieHeader, createSession, csrfOk, LoginThrottle, revokeSession, sessionOf, type Session } from '../admin/session.ts';
import { healthStatus } from './flows.ts';
import { dbNow, withTransaction } from '../../db/client.ts';
import { getFlowByName, listSchedules, pageFlows } from '../../queries/flows.ts';
import { getRun, pageRuns, runHistory, runTasks } from '../../queries/runs.ts';
import { guardHistory, openHold } from '../../queries/guard.ts';
import { disabledFlowsNow, dueNext, lateRuns, recentFailures, runningRuns } from '../../queries/overview.ts';
import { reactivateFlowTx } from '../../guard/operations.ts';
import { queueDepth } from '../../queries/inspect.ts';
import { NAME_RE } from '../../flows/spec.ts';
import { UserInputError, errorMessage } from '../../errors.ts';

/** Flows per admin flows page; a "more…" link continues after the last one. */
const ADMIN_FLOWS_PAGE = 500;

const RECENT_RUNS = 20;

function send(reply: FastifyReply, status: number, opts: Omit<LayoutOptions, 'nonce'>, body: Markup) {
  const nonce = randomBytes(16).toString('base64');
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header(
      'content-security-policy',
      `default-src 'none'; script-src 'self'; style-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    )
    .send(layout({ ...opts, nonce }, body));
}

const formBody = (body: unknown): Record<string, string> => (body && typeof body === 'object' ? (body as Record<string, string>) : {});

export function adminRoutes(ctx: ApiContext) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  const throttle = new LoginThrottle();
  return async (app: FastifyInstance) => {
    // HTML forms post application/x-www-form-urlencoded; parsed here only (this plugin's scope).
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    /** The session, or a redirect to the login form (GET) / 401 (POST). */
    const guard = async (req: FastifyRequest, reply: FastifyReply): Promise<Session | null> => {
      const session = await sessionOf(ctx.pool, req, auth);
      if (session) return session;
      if (req.method === 'GET') reply.redirect('/admin/login', 303);
      else send(reply, 401, { title: 'Sign in' }, loginPage('Your session has expired: sign in again.'));
      return null;
    };
    const page = (session: Session, title: string, active?: LayoutOptions['active']) => ({ title, active, session: { scope: session.scope, csrf: session.csrf } });

    app.get('/app.js', async (_req, reply) =>
      reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(ADMIN_JS),
    );

    app.get('/login', async (req, reply) => {
      if (await sessionOf(ctx.pool, req, auth)) return reply.redirect('/admin', 303);
      return send(reply, 200, { title: 'Sign in' }, loginPage());
    });

    app.post('/login', async (req, reply) => {
      const wait = throttle.waitMs(req.ip);
      if (wait > 0) {
        return send(reply.header('retry-after', String(Math.ceil(wait / 1000))), 429, { title: 'Sign in' }, loginPage(`Too many failed sign-ins: wait ${Math.ceil(wait / 1000)} s and try again.`));
      }
      const token = formBody(req.body).token?.trim() ?? '';
      const session = token ? await createSession(ctx.pool, token, auth) : null;
      if (!session) {
        if (token) throttle.failed(req.ip);
        return send(reply, 401, { title: 'Sign in' }, loginPage(token ? 'That token is not valid.' : 'Enter a token.'));
      }
      throttle.succeeded(req.ip);
      return reply.header('set-cookie', cookieHeader(session.value, req)).redirect('/admin', 303);
    });

    app.post('/logout', async (req, reply) => {
      const session = await sessionOf(ctx.pool, req, auth);
      if (session && !csrfOk(session, req.body)) return reply.code(403).send('forbidden');
      if (session) await revokeSession(ctx.pool, session);
      return reply.header('set-cookie', cookieHeader('', req, 0)).redirect('/admin/login', 303);
    });

    app.get('/', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const [now, due, running, late, failing, disabled] = await Promise.all([
        dbNow(ctx.pool), dueNext(ctx.pool), runningRuns(ctx.pool), lateRuns(ctx.pool), recentFailures(ctx.pool), disabledFlowsNow(ctx.pool),
      ]);
      return send(reply, 200, page(session, 'Overview', 'overview'), overviewPage({ now, due, running, late, failing, disabled }));
    });

    // A page of ADMIN_FLOWS_PAGE flows by name; `?after=NAME` continues after NAME ("more…" link).
    app.get<{ Querystring: { after?: string } }>('/flows', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const after = typeof req.query.after === 'string' && NAME_RE.test(req.query.after) ? req.query.after : undefined;
      const [now, rows] = await Promise.all([dbNow(ctx.pool), pageFlows(ctx.pool, { after, limit: ADMIN_FLOWS_PAGE + 1 })]);
      const flows = rows.slice(0, ADMIN_FLOWS_PAGE);
      const more = rows.length > ADMIN_FLOWS_PAGE ? flows[flows.length - 1]!.name : undefined;
      return send(reply, 200, page(session, 'Flows', 'flows'), flowsPage(flows, now, { after, more }));
    });

    const renderFlow = async (reply: FastifyReply, session: Session, name: string, status = 200, notice?: { kind: 'ok' | 'bad'; text: string }) => {
      const flow = NAME_RE.test(name) ? await getFlowByName(ctx.pool, name) : null;
      if (!flow) return send(reply, 404, page(session, 'Not found', 'flows'), notFound(`No flow named ‘${name}’.`));
      const [now, schedules, runs, history, hold, health] = await Promise.all([
        dbNow(ctx.pool),
        listSchedules(ctx.pool, flow.id),
        pageRuns(ctx.pool, { flowName: flow.name, limit: RECENT_RUNS }),
        guardHistory(ctx.pool, flow.name),
        openHold(ctx.pool, flow.name),
        healthStatus(ctx.pool, flow, ctx.config),
      ]);
      return send(reply, status, page(session, flow.name, 'flows'), flowPage({
        now, flow, schedules, runs, history, hold, health, notice, canOperate: session.scope === 'operate', csrf: session.csrf,
      }));
    };

    app.get<{ Params: { name: string }; Querystring: { done?: string } }>('/flows/:name', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const notice = req.query.done === 'reactivated' ? { kind: 'ok' as const, text: 'Flow reactivated: its schedules are enabled again and the failure count starts from now.' } : undefined;
      return renderFlow(reply, session, req.params.name, 200, notice);
    });

    app.post<{ Params: { name: string } }>('/flows/:name/reactivate', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      if (!csrfOk(session, req.body)) return renderFlow(reply, session, req.params.name, 403, { kind: 'bad', text: 'The form expired: reload the page and try again.' });
      if (session.scope !== 'operate') return renderFlow(reply, session, req.params.name, 403, { kind: 'bad', text: 'Reactivating needs the admin token: sign in with FLOWWARDEN_ADMIN_TOKEN.' });
      const by = z.string().trim().min(1).max(200).safeParse(formBody(req.body).by);
      if (!by.success) return renderFlow(reply, session, req.params.name, 400, { kind: 'bad', text: 'Enter your name: it is recorded as who reactivated the flow.' });
      try {
        await withTransaction(ctx.pool, (tx) => reactivateFlowTx(ctx.boss, tx, req.params.name, { by: `${by.data} (admin page)` }));
      } catch (err) {
        if (err instanceof UserInputError) return renderFlow(reply, session, req.params.name, 409, { kind: 'bad', text: err.message });
        ctx.log.error({ err: errorMessage(err), flow: req.params.name }, 'admin reactivate failed');
        throw err;
      }
      return reply.redirect(`/admin/flows/${encodeURIComponent(req.params.name)}?done=reactivated`, 303);
    });

    app.get<{ Params: { id: string } }>('/runs/:id', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const run = z.uuid().safeParse(req.params.id).success ? await getRun(ctx.pool, req.params.id) : null;
      if (!run) return send(reply, 404, page(session, 'Not found'), notFound(`No run with id ‘${req.params.id}’.`));
      const [now, history, tasks] = await Promise.all([dbNow(ctx.pool), runHistory(ctx.pool, run.id), runTasks(ctx.pool, run.id)]);
      return send(reply, 200, page(session, `Run ${run.id.slice(0, 8)}`), runPage({ now, run, history, tasks }));
    });

    app.get('/queues', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      // The same numbers as GET /api/queues, `flowwarden queues` and /metrics (view v_queue_depth).
      const [now, queues] = await Promise.all([dbNow(ctx.pool), queueDepth(ctx.pool)]);
      return send(reply, 200, page(session, 'Queues', 'queues'), queuesPage(queues, now));
    });
  };
}

function notFound(text: string): Markup {
  return html`<h1>Not found</h1><p class="sub">${text} <a href="/admin">Back to the overview</a></p>`;
}
