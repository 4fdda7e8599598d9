// cirrus up / cirrus api: run the server roles in the foreground.

import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CONTROL_PORT } from '../../control/defaults.js';
import type { ApiRole } from '../../roles/api.js';
import { CliError } from '../client.js';

export const DEFAULT_DATA_DIR = '/var/lib/cirrus';
export const DEFAULT_API_PORT = 8082;

interface ServerOptions {
  data: string;
  listen: string;
  socket?: string;
  logLevel: string;
  controlListen?: string;
}

interface Role {
  close(): Promise<void>;
}

async function runUntilSignal<R extends Role>(start: () => Promise<R>, banner: (r: R) => string): Promise<void> {
  let role: R;
  try {
    role = await start();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new CliError(`the address is already in use (${err.message}); is another 'cirrus up' running? use --listen to pick another port`);
    throw e;
  }
  console.log(banner(role));
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void role.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** The server modules load only for server roles: the CLI's verbs start fast. */
async function startRole(opts: ServerOptions): Promise<ApiRole> {
  const { parseListen, startApi } = await import('../../roles/api.js');
  return startApi({ dataDir: opts.data, listen: parseListen(opts.listen), logLevel: opts.logLevel, ...(opts.socket ? { socket: opts.socket } : {}) });
}

/** The all-in-one node: the config API and a control node following it. */
async function startAllInOne(opts: ServerOptions): Promise<ApiRole & { controlUrl: string }> {
  const api = await startRole(opts);
  try {
    const { parseListen } = await import('../../roles/api.js');
    const { startControl } = await import('../../roles/control.js');
    const control = await startControl({ api: api.url, listen: parseListen(opts.controlListen!), name: 'local', tokenFile: path.join(opts.data, 'control.token') });
    return {
      ...api,
      controlUrl: control.url,
      async close() {
        await control.close();
        await api.close();
      },
    };
  } catch (e) {
    await api.close();
    throw e;
  }
}

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data directory (the embedded store lives here)', process.env['CIRRUS_DATA'] ?? DEFAULT_DATA_DIR)
    .option('--listen <addr>', 'config API address, PORT or HOST:PORT', `127.0.0.1:${DEFAULT_API_PORT}`)
    .option('--socket <path>', 'also serve the API on this unix socket (for agents in other network namespaces)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'warn');
}

export function serverCommands(program: Command): void {
  serverOptions(program.command('up').description('run the all-in-one Cirrus node: the config API on the embedded store and a control node'))
    .option('--control-listen <addr>', `control node address for agents, HOST:PORT`, `127.0.0.1:${DEFAULT_CONTROL_PORT}`)
    .action(async (opts: ServerOptions) => {
      await runUntilSignal(
        () => startAllInOne(opts),
        (r) => `cirrus: config API on ${r.url}, control node on ${r.controlUrl} (data and agent token in ${opts.data}); try: CIRRUS_API=${r.url} cirrus network list`,
      );
    });
  serverOptions(program.command('api').description('run the config API role alone')).action(async (opts: ServerOptions) => {
    await runUntilSignal(
      () => startRole(opts),
      (r) => `cirrus: config API on ${r.url} (data in ${opts.data})`,
    );
  });
}
