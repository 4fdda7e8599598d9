// The control node role: the ControlNode listening for agents, with its token and TLS material.

import { type TlsFiles, loadToken, readTls } from '../control/auth.js';
import { ControlNode } from '../control/server.js';
import type { ListenAddress } from './api.js';

export interface ControlRoleOptions {
  api: string;
  listen: ListenAddress;
  name: string;
  /** The shared agent token's file; created (random) when missing. */
  tokenFile: string;
  tls?: TlsFiles;
  socket?: string;
}

export interface ControlRole {
  node: ControlNode;
  url: string;
  close(): Promise<void>;
}

export async function startControl(opts: ControlRoleOptions): Promise<ControlRole> {
  const tls = opts.tls ? readTls(opts.tls) : {};
  if (tls.ca && !tls.cert) throw new Error('--tls-ca (client certificates) needs --tls-cert and --tls-key');
  const node = new ControlNode({
    api: opts.api,
    host: opts.listen.host,
    port: opts.listen.port,
    name: opts.name,
    token: loadToken(opts.tokenFile, true),
    ...(opts.socket ? { socket: opts.socket } : {}),
    ...(tls.cert && tls.key ? { tls: { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) } } : {}),
  });
  const url = await node.start();
  return { node, url, close: () => node.stop() };
}
