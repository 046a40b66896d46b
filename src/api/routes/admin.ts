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
import type { ApiContext } from '../context.ts';
import { ADMIN_JS, html, layout, type LayoutOptions, type Markup } from '../admin/html.ts';
import { flowPage, flowsPage, loginPage, overviewPage, queuesPage, runPage, runsPage, RUN_ORIGINS, RUN_RANGES, RUN_STATE_FILTERS, type RunRange, type RunsFilterView } from '../admin/pages.ts';
import { cookieHeader, createSession, csrfOk, LoginThrottle, revokeSession, sessionOf, type Session } from '../admin/session.ts';
import { healthStatus } from './flows.ts';
import { dbNow, withTransaction } from '../../db/client.ts';
import { readDb } from '../reads.ts';
import { getFlowByName, listSchedules, pageFlows } from '../../queries/flows.ts';
import { getRun, pageRuns, runHistory, runTasks } from '../../runs/read.ts';
import { guardHistory, openHold } from '../../queries/guard.ts';
import { disabledFlowsNow, lateRuns, recentFailures, runningRuns } from '../../queries/overview.ts';
import { dueFires, runStrip } from '../../queries/admin.ts';
import { runsPerMinute } from '../../queries/chart.ts';
import { nextFireAfter } from '../../scheduling/fire-times.ts';
import { scheduleSpecOf } from '../../queries/flows.ts';
import type { StateType } from '../../types.ts';
import { reactivateFlowTx } from '../../guard/operations.ts';
import { queueDepth } from '../../queries/inspect.ts';
import { tableSizes } from '../../queries/retention.ts';
import { retentionRows } from '../../cli/status.ts';
import { NAME_RE } from '../../flows/spec.ts';
import { UserInputError } from '../../errors.ts';

/** Flows per admin flows page; a "more…" link continues after the last one. */
const ADMIN_FLOWS_PAGE = 500;

const RECENT_RUNS = 20;
/** A flow page reads its last RECENT_SCAN runs for its recent and folded cancelled runs. */
const RECENT_SCAN = 200;
/** Runs per admin runs page; "older runs →" continues with a keyset cursor. */
const ADMIN_RUNS_PAGE = 50;
/** The overview chart's window. */
const CHART_HOURS = 3;
/** Cells in a flow's run strip. */
const STRIP_RUNS = 40;

const asList = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);

/** The runs page's filters from its query string; bad values are dropped with an explanation. */
export function parseRunsFilter(q: Record<string, unknown>, now: Date): { filter: RunsFilterView; after?: readonly [string, string]; errors: string[] } {
  const errors: string[] = [];
  const flowRaw = typeof q.flow === 'string' ? q.flow.trim() : '';
  const flow = flowRaw && NAME_RE.test(flowRaw) ? flowRaw : undefined;
  if (flowRaw && !flow) errors.push(`flow ‘${flowRaw}’ is not a valid flow name (letters, digits, '.', '_', ':', '-')`);
  const states = asList(q.state).map((s) => s.toUpperCase());
  const badStates = states.filter((s) => !(RUN_STATE_FILTERS as readonly string[]).includes(s));
  if (badStates.length) errors.push(`state ${badStates.join(', ')} is not one of ${RUN_STATE_FILTERS.join(', ')}`);
  const origins = asList(q.origin).map((s) => s.toLowerCase());
  const badOrigins = origins.filter((o) => !(RUN_ORIGINS as readonly string[]).includes(o));
  if (badOrigins.length) errors.push(`origin ${badOrigins.join(', ')} is not one of ${RUN_ORIGINS.join(', ')}`);
  const rangeRaw = typeof q.range === 'string' ? q.range : '24h';
  // Own keys only: `in` would accept inherited names such as 'constructor'.
  const known = Object.hasOwn(RUN_RANGES, rangeRaw);
  const range: RunRange = known ? (rangeRaw as RunRange) : '24h';
  if (!known) errors.push(`range ‘${rangeRaw}’ is not one of ${Object.keys(RUN_RANGES).join(', ')}`);
  const time = (name: string): Date | undefined => {
    const v = q[name];
    if (typeof v !== 'string' || v === '') return undefined;
    const d = /(Z|[+-]\d{2}:?\d{2})$/.test(v) ? new Date(v) : new Date(NaN);
    if (Number.isNaN(d.getTime())) {
      errors.push(`${name} ‘${v}’ is not an ISO 8601 time with a zone, e.g. ${now.toISOString()}`);
      return undefined;
    }
    return d;
  };
  const since = time('since');
  const until = time('until');
  let after: readonly [string, string] | undefined;
  if (typeof q.after === 'string' && q.after) {
    const [key, id] = q.after.split('~');
    if (key && id && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(key) && z.uuid().safeParse(id).success) after = [key, id];
    else errors.push('the page cursor is not valid: start again from the newest runs');
  }
  return {
    filter: {
      flow,
      states: states.filter((s) => !badStates.includes(s)),
      origins: origins.filter((o) => !badOrigins.includes(o)),
      range,
      since,
      until,
      upcoming: q.upcoming === '1' || q.upcoming === 'on' || q.upcoming === 'true',
    },
    after,
    errors,
  };
}

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
      const db = readDb(req, ctx.pool);
      const now = await dbNow(db);
      // The chart ends with the current minute (its bar fills up as the minute goes).
      const until = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 60_000);
      const since = new Date(until.getTime() - CHART_HOURS * 3_600_000);
      const [due, running, late, failing, disabled, buckets, sizes] = await Promise.all([
        dueFires(db, now), runningRuns(db), lateRuns(db), recentFailures(db), disabledFlowsNow(db), runsPerMinute(db, { since, until }), tableSizes(db),
      ]);
      return send(reply, 200, page(session, 'Overview', 'overview'), overviewPage({ now, due, running, late, failing, disabled, chart: { buckets, since, until }, storage: { retention: retentionRows(ctx.config.retention), ...sizes } }));
    });

    // A page of ADMIN_FLOWS_PAGE flows by name; `?after=NAME` continues after NAME ("more…" link).
    app.get<{ Querystring: { after?: string } }>('/flows', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const after = typeof req.query.after === 'string' && NAME_RE.test(req.query.after) ? req.query.after : undefined;
      const [now, rows] = await Promise.all([dbNow(readDb(req, ctx.pool)), pageFlows(readDb(req, ctx.pool), { after, limit: ADMIN_FLOWS_PAGE + 1 })]);
      const flows = rows.slice(0, ADMIN_FLOWS_PAGE);
      const more = rows.length > ADMIN_FLOWS_PAGE ? flows[flows.length - 1]!.name : undefined;
      return send(reply, 200, page(session, 'Flows', 'flows'), flowsPage(flows, now, { after, more }));
    });

    // GET renders read where readDb says (a replica, or the primary for a client that just wrote);
    // a POST's re-render (errors) reads the primary.
    const renderFlow = async (reply: FastifyReply, session: Session, name: string, status = 200, notice?: { kind: 'ok' | 'bad'; text: string }) => {
      const db = readDb(reply.request, ctx.pool);
      const flow = NAME_RE.test(name) ? await getFlowByName(db, name) : null;
      if (!flow) return send(reply, 404, page(session, 'Not found', 'flows'), notFound(`No flow named ‘${name}’.`));
      const now = await dbNow(db);
      // Recent runs: the last RECENT_SCAN runs due by now (filters explicit), split into the ones
      // that matter (finished, running, late) and the cancelled ones (pre-created runs a pause or
      // the guard cancelled), folded apart. One bounded read: a state filter on a flow's whole
      // history could walk all of it when a state is rare.
      const [schedules, recent, strip, history, hold, health] = await Promise.all([
        listSchedules(db, flow.id),
        pageRuns(db, { flowName: flow.name, until: new Date(now.getTime() + 1), limit: RECENT_SCAN }),
        runStrip(db, flow.id, now, STRIP_RUNS),
        guardHistory(db, flow.name),
        openHold(db, flow.name, { lock: false }),
        healthStatus(db, flow, ctx.config),
      ]);
      const runs = recent.filter((r) => r.stateType !== 'CANCELLED').slice(0, RECENT_RUNS);
      const cancelled = recent.filter((r) => r.stateType === 'CANCELLED');
      const nextFires = new Map<string, Date>();
      for (const s of schedules) {
        if (!s.enabled || !s.nextRunAt) continue;
        try {
          const next = nextFireAfter(scheduleSpecOf(s), now);
          nextFires.set(s.id, next < s.nextRunAt ? next : s.nextRunAt);
        } catch {
          // keep next_run_at
        }
      }
      return send(reply, status, page(session, flow.name, 'flows'), flowPage({
        now, flow, schedules, nextFires, runs, cancelled: { runs: cancelled.slice(0, RECENT_RUNS), more: cancelled.length > RECENT_RUNS || recent.length === RECENT_SCAN }, strip,
        history, hold, health, notice, canOperate: session.scope === 'operate', csrf: session.csrf,
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
        ctx.log.error({ err, flow: req.params.name }, 'admin reactivate failed');
        throw err;
      }
      return reply.redirect(`/admin/flows/${encodeURIComponent(req.params.name)}?done=reactivated`, 303);
    });

    // Runs across all flows: filters (flow, state incl. Late, origin, time range or window,
    // upcoming) and keyset pages of ADMIN_RUNS_PAGE (`?after=<scheduled_for>~<id>`, "older runs →").
    app.get<{ Querystring: Record<string, unknown> }>('/runs', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const now = await dbNow(readDb(req, ctx.pool));
      const { filter, after, errors } = parseRunsFilter(req.query ?? {}, now);
      const types = filter.states.filter((s) => s !== 'LATE') as StateType[];
      const since = filter.since ?? (filter.until || RUN_RANGES[filter.range] === 0 ? undefined : new Date(now.getTime() - RUN_RANGES[filter.range] * 1000));
      const until = filter.until ?? (filter.upcoming ? undefined : new Date(now.getTime() + 1));
      const rows = await pageRuns(readDb(req, ctx.pool), {
        flowName: filter.flow, stateTypes: types, late: filter.states.includes('LATE'), origins: filter.origins, since, until, upcoming: filter.upcoming, after, limit: ADMIN_RUNS_PAGE + 1,
      });
      const runs = rows.slice(0, ADMIN_RUNS_PAGE);
      const last = runs[runs.length - 1];
      const next = rows.length > ADMIN_RUNS_PAGE && last ? `${last.sortKey}~${last.id}` : undefined;
      return send(reply, errors.length ? 400 : 200, page(session, 'Runs', 'runs'), runsPage({ now, filter, runs, next, paged: !!after, error: errors.length ? `Ignored: ${errors.join('; ')}.` : undefined }));
    });

    app.get<{ Params: { id: string } }>('/runs/:id', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      const run = z.uuid().safeParse(req.params.id).success ? await getRun(readDb(req, ctx.pool), req.params.id) : null;
      if (!run) return send(reply, 404, page(session, 'Not found'), notFound(`No run with id ‘${req.params.id}’.`));
      const [now, history, tasks] = await Promise.all([dbNow(readDb(req, ctx.pool)), runHistory(readDb(req, ctx.pool), run.id), runTasks(readDb(req, ctx.pool), run.id)]);
      return send(reply, 200, page(session, `Run ${run.id.slice(0, 8)}`), runPage({ now, run, history, tasks }));
    });

    app.get('/queues', async (req, reply) => {
      const session = await guard(req, reply);
      if (!session) return reply;
      // The same numbers as GET /api/queues, `flowwarden queues` and /metrics (view v_queue_depth).
      const [now, queues] = await Promise.all([dbNow(readDb(req, ctx.pool)), queueDepth(readDb(req, ctx.pool))]);
      return send(reply, 200, page(session, 'Queues', 'queues'), queuesPage(queues, now));
    });
  };
}

function notFound(text: string): Markup {
  return html`<h1>Not found</h1><p class="sub">${text} <a href="/admin">Back to the overview</a></p>`;
}
