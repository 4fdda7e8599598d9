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
  analyticsListen?: string;
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

/** The all-in-one node: the config API, a control node following it and the flow collector. */
async function startAllInOne(opts: ServerOptions): Promise<ApiRole & { controlUrl: string; analyticsUrl: string }> {
  const api = await startRole(opts);
  const started: { close(): Promise<void> }[] = [api];
  try {
    const { parseListen } = await import('../../roles/api.js');
    const { startControl } = await import('../../roles/control.js');
    const { startCollector } = await import('../../roles/collector.js');
    const tokenFile = path.join(opts.data, 'control.token');
    const control = await startControl({ api: api.url, listen: parseListen(opts.controlListen!), name: 'local', tokenFile });
    started.unshift(control);
    const collector = await startCollector({ dataDir: path.join(opts.data, 'analytics'), listen: parseListen(opts.analyticsListen!), tokenFile, logLevel: opts.logLevel });
    started.unshift(collector);
    return {
      ...api,
      controlUrl: control.url,
      analyticsUrl: collector.url,
      async close() {
        for (const r of started) await r.close();
      },
    };
  } catch (e) {
    for (const r of started) await r.close();
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
  serverOptions(program.command('up').description('run the all-in-one Cirrus node: the config API on the embedded store, a control node and the flow collector'))
    .option('--control-listen <addr>', `control node address for agents, HOST:PORT`, `127.0.0.1:${DEFAULT_CONTROL_PORT}`)
    .option('--analytics-listen <addr>', 'flow collector and analytics API, HOST:PORT', '127.0.0.1:8081')
    .action(async (opts: ServerOptions) => {
      await runUntilSignal(
        () => startAllInOne(opts),
        (r) => `cirrus: config API on ${r.url}, control node on ${r.controlUrl}, analytics on ${r.analyticsUrl} (data and agent token in ${opts.data}); try: CIRRUS_API=${r.url} cirrus network list`,
      );
    });
  serverOptions(program.command('api').description('run the config API role alone')).action(async (opts: ServerOptions) => {
    await runUntilSignal(
      () => startRole(opts),
      (r) => `cirrus: config API on ${r.url} (data in ${opts.data})`,
    );
  });
}
