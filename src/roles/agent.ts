// The agent role: the Agent, its port API (127.0.0.1:9091 and a unix socket for callers
// in other namespaces) and its introspect (127.0.0.1:8085, and optionally a unix socket).

import type { FastifyInstance } from 'fastify';
import { Agent, type AgentOptions } from '../agent/agent.js';
import { buildIntrospect } from '../agent/http/introspect.js';
import { buildPortApi } from '../agent/http/port-api.js';
import { listenUnix } from '../util/unix-listener.js';
import type { ListenAddress } from './api.js';

export interface AgentRoleOptions extends AgentOptions {
  portApi: ListenAddress;
  portSocket?: string;
  introspect: ListenAddress;
  introspectSocket?: string;
}

export interface AgentRole {
  agent: Agent;
  portApiUrl: string;
  introspectUrl: string;
  close(): Promise<void>;
}

export async function startAgent(opts: AgentRoleOptions): Promise<AgentRole> {
  const agent = new Agent(opts);
  const portApi = await buildPortApi(agent);
  const introspect = await buildIntrospect(agent);
  await portApi.listen({ host: opts.portApi.host, port: opts.portApi.port });
  await introspect.listen({ host: opts.introspect.host, port: opts.introspect.port });
  const unix = opts.portSocket ? await listenUnix(portApi, opts.portSocket) : undefined;
  const introspectUnix = opts.introspectSocket ? await listenUnix(introspect, opts.introspectSocket) : undefined;
  agent.start();
  return {
    agent,
    portApiUrl: urlOf(portApi),
    introspectUrl: urlOf(introspect),
    async close() {
      unix?.close();
      introspectUnix?.close();
      await agent.stop();
      await portApi.close();
      await introspect.close();
    },
  };
}

function urlOf(app: FastifyInstance): string {
  const a = app.server.address();
  return typeof a === 'object' && a ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a);
}

