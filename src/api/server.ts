// The config API server (Fastify): TF-shaped routes over the ConfigService.

import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ApiError } from '../config/errors.js';
import { type ConfigService, DeleteBlocked } from '../config/service.js';
import { baseUrl, errorBody } from './http.js';
import { hrefOf } from './render.js';
import { actionRoutes } from './routes/actions.js';
import { feedRoutes } from './routes/feed.js';
import { homepageRoutes } from './routes/homepage.js';
import { resourceRoutes } from './routes/resources.js';

export interface ApiOptions {
  /** Largest accepted request body in bytes (413 above). */
  bodyLimit?: number;
  logLevel?: string;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function buildApi(svc: ConfigService, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    bodyLimit,
    logger: { level: opts.logLevel ?? 'warn' },
    // vnc_api addresses actions with a trailing slash (/virtual-network/<uuid>/ip-alloc/).
    routerOptions: { ignoreTrailingSlash: true },
  });

  // A store that acknowledges commits in groups (SqliteStore) shows a write in the view
  // before its group is durable, for the rest of that event-loop turn: no answer leaves
  // before the group it may have seen is on disk, and none if that group was rolled back.
  const store = svc.store;
  if (store.pendingCommits) {
    app.addHook('onSend', (_req, _reply, payload, done) => {
      const pending = store.pendingCommits!();
      if (!pending) return done(null, payload);
      pending.then(
        () => done(null, payload),
        (e: unknown) => done(new ApiError(500, `the store could not commit: ${(e as Error).message}`)),
      );
    });
  }

  // Every body is JSON whatever its content type says (curl -d sends form-urlencoded);
  // an empty body (vnc_api's DELETE carries a JSON content type) is no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch (e) {
      done(new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const base = baseUrl(req);
    if (err instanceof DeleteBlocked) {
      const hrefs = err.blockers.map((b) => `'${hrefOf(base, b.type, b.uuid)}'`).join(', ');
      const prefix = err.kind === 'refs' ? 'Delete when resource still referred' : 'Delete when children still present';
      const message = `${prefix}: [${hrefs}]`;
      return reply.code(409).send(errorBody(409, message, undefined, { blockers: err.blockers }));
    }
    if (err instanceof ApiError) return reply.code(err.status).send(errorBody(err.status, err.message, err.field, err.extra));
    const status = (err as FastifyError).statusCode ?? 500;
    if (status === 413) return reply.code(413).send(errorBody(413, `request body is larger than ${bodyLimit} bytes`));
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.code(status).send(errorBody(status, status >= 500 ? 'internal error' : err.message));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, `${req.method} ${req.url.split('?')[0]} is not a Cirrus API path (GET / lists them)`));
  });

  await app.register(homepageRoutes, { svc });
  await app.register(actionRoutes, { svc });
  await app.register(feedRoutes, { svc });
  await app.register(resourceRoutes, { svc });
  return app;
}
