// cirrus control: a control node in the foreground.

import os from 'node:os';
import type { Command } from 'commander';
import { DEFAULT_CONTROL_PORT } from '../../control/defaults.js';
import { CliError } from '../client.js';
import { DEFAULT_DATA_DIR } from './server.js';

interface ControlCliOptions {
  listen: string;
  name: string;
  tokenFile: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  socket?: string;
}

export const defaultTokenFile = (): string => `${process.env['CIRRUS_DATA'] ?? DEFAULT_DATA_DIR}/control.token`;

export function controlCommands(program: Command): void {
  program
    .command('control')
    .description('run a control node: computes routes from the configuration and streams each agent its host\'s state')
    .option('--listen <addr>', `address agents connect to, HOST:PORT (TF: ${DEFAULT_CONTROL_PORT})`, `0.0.0.0:${DEFAULT_CONTROL_PORT}`)
    .option('--name <name>', "this node's name", os.hostname())
    .option('--token-file <file>', 'the token agents must present (created, random, when missing)', defaultTokenFile())
    .option('--tls-cert <file>', 'serve wss:// with this certificate (PEM)')
    .option('--tls-key <file>', 'the certificate\'s key (PEM)')
    .option('--tls-ca <file>', 'require agents to present a certificate signed by this CA (mTLS)')
    .option('--socket <path>', 'also serve /healthz, /metrics and /agents on this unix socket')
    .action(async (opts: ControlCliOptions, cmd: Command) => {
      const api = cmd.optsWithGlobals<{ api?: string }>().api ?? process.env['CIRRUS_API'] ?? 'http://127.0.0.1:8082';
      const { parseListen } = await import('../../roles/api.js');
      const { startControl } = await import('../../roles/control.js');
      let listen;
      try {
        listen = parseListen(opts.listen, '0.0.0.0');
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const role = await startControl({
        api,
        listen,
        name: opts.name,
        tokenFile: opts.tokenFile,
        ...(opts.socket ? { socket: opts.socket } : {}),
        tls: { ...(opts.tlsCert ? { cert: opts.tlsCert } : {}), ...(opts.tlsKey ? { key: opts.tlsKey } : {}), ...(opts.tlsCa ? { ca: opts.tlsCa } : {}) },
      }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') throw new CliError(`${e.message}: is another control node running here? (--listen)`);
        throw new CliError(e.message);
      });
      console.log(`cirrus control ${opts.name}: agents on ${role.url}, config from ${api}, token in ${opts.tokenFile}`);
      await new Promise<void>((resolve) => {
        const stop = () => void role.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
