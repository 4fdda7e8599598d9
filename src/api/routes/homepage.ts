// GET / (TF's homepage: the links its clients discover types and actions from),
// GET /openapi.json, GET /healthz.

import type { FastifyInstance } from 'fastify';
import type { ConfigService } from '../../config/service.js';
import { TYPE_NAMES, plural } from '../../model/types.js';
import { openApiDocument } from '../openapi.js';
import { baseUrl } from '../http.js';

/** Action links by TF's names. */
export const ACTIONS: { name: string; path: string; method: string }[] = [
  { name: 'name-to-id', path: '/fqname-to-id', method: 'POST' },
  { name: 'id-to-name', path: '/id-to-fqname', method: 'POST' },
  { name: 'ref-update', path: '/ref-update', method: 'POST' },
  { name: 'ref-relax-for-delete', path: '/ref-relax-for-delete', method: 'POST' },
  { name: 'prop-collection-get', path: '/prop-collection-get', method: 'GET' },
  { name: 'prop-collection-update', path: '/prop-collection-update', method: 'POST' },
  { name: 'list-bulk-collection', path: '/list-bulk-collection', method: 'POST' },
  { name: 'useragent-keyvalue', path: '/useragent-kv', method: 'POST' },
  { name: 'virtual-network-ip-alloc', path: '/virtual-network/%s/ip-alloc', method: 'POST' },
  { name: 'virtual-network-ip-free', path: '/virtual-network/%s/ip-free', method: 'POST' },
  { name: 'virtual-network-subnet-ip-count', path: '/virtual-network/%s/subnet-ip-count', method: 'POST' },
];

export async function homepageRoutes(app: FastifyInstance, { svc }: { svc: ConfigService }): Promise<void> {
  const openapi = JSON.stringify(openApiDocument());

  app.get('/', async (req) => {
    const base = baseUrl(req);
    const link = (rel: string, path: string, name: string, method: string | null = null) => ({ link: { rel, href: `${base}${path}`, name, method } });
    return {
      href: base,
      links: [
        link('documentation', '/openapi.json', 'documentation', 'GET'),
        ...TYPE_NAMES.map((t) => link('collection', `/${plural(t)}`, t)),
        ...TYPE_NAMES.map((t) => link('resource-base', `/${t}`, t)),
        ...ACTIONS.map((a) => link('action', a.path, a.name, a.method)),
      ],
    };
  });

  app.get('/openapi.json', async (_req, reply) => reply.type('application/json').send(openapi));

  app.get('/healthz', async () => ({ status: 'ok', revision: svc.view.rev }));
}
