// A second listener on a unix socket for a Fastify app: callers in other network
// namespaces (lab agents, the CLI outside the lab) reach it through the file system.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

export async function listenUnix(app: FastifyInstance, socketPath: string): Promise<http.Server> {
  await app.ready();
  fs.rmSync(socketPath, { force: true });
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  const server = http.createServer((req, res) => app.routing(req, res));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, () => resolve()));
  fs.chmodSync(socketPath, 0o600);
  return server;
}
