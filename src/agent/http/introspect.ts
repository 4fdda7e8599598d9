// The agent's introspect (TF's port 8085): JSON views of interfaces, networks (VRFs) and
// routes, health, and Prometheus metrics.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Agent } from '../agent.js';
import { portView } from './port-api.js';

export async function buildIntrospect(agent: Agent): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } });

  app.get('/healthz', async (_req, reply) => {
    const { last } = agent.state;
    const healthy = agent.mirror.view !== undefined;
    return reply.code(healthy ? 200 : 503).send({
      status: healthy ? (agent.mirror.connected ? 'ok' : 'headless') : 'waiting for configuration',
      host: agent.opts.host,
      config_connected: agent.mirror.connected,
      config_revision: agent.mirror.view?.rev ?? null,
      last_reconcile: last ? { duration_ms: Math.round(last.durationMs * 10) / 10, changes: last.changes, errors: last.errors.length } : null,
    });
  });

  app.get('/metrics', async (_req, reply) => reply.type(agent.metrics.contentType).send(await agent.metrics.metrics()));

  app.get('/interfaces', async () => ({ interfaces: agent.ports().map(portView) }));

  return app;
}
