// The store's change feed over HTTP, for agents (and, later, control nodes in other
// processes): a snapshot with its revision, then long-polls for the changes after it.

import type { FastifyInstance } from 'fastify';
import { ApiError, BadRequest } from '../../config/errors.js';
import type { ConfigService } from '../../config/service.js';
import { CompactedError } from '../../store/store.js';
import type { Query } from '../query.js';

const MAX_WAIT_S = 60;

export async function feedRoutes(app: FastifyInstance, { svc }: { svc: ConfigService }): Promise<void> {
  app.get('/_cirrus/snapshot', async () => {
    const { kvs, rev } = await svc.store.range('');
    return { rev, kvs };
  });

  app.get<{ Querystring: Query }>('/_cirrus/watch', async (req) => {
    const since = Number(req.query['since']);
    const wait = req.query['timeout'] === undefined ? 25 : Number(req.query['timeout']);
    if (!Number.isInteger(since) || since < 0) throw new BadRequest(`since: '${String(req.query['since'])}' is not a revision`, 'since');
    if (!(wait >= 0 && wait <= MAX_WAIT_S)) throw new BadRequest(`timeout: seconds between 0 and ${MAX_WAIT_S}`, 'timeout');
    // A revision from the future: the client followed another store (or one that was reset).
    if (since > (await svc.store.revision())) throw new ApiError(410, `revision ${since} is ahead of this store; take a new snapshot`, 'since');
    const read = async () => {
      try {
        return await svc.store.changesSince(since);
      } catch (e) {
        if (e instanceof CompactedError) throw new ApiError(410, e.message, 'since');
        throw e;
      }
    };
    let changes = await read();
    if (changes.length === 0 && wait > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait * 1000);
        const stop = svc.onChange(done);
        req.raw.once('close', done);
        function done() {
          clearTimeout(timer);
          stop();
          resolve();
        }
      });
      changes = await read();
    }
    return { rev: changes.length ? changes[changes.length - 1]!.rev : Math.max(since, svc.view.rev), changes };
  });
}
