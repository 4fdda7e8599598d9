// cirrus agent: the per-host agent in the foreground.

import os from 'node:os';
import type { Command } from 'commander';
import { CliError } from '../client.js';

interface AgentCliOptions {
  host: string;
  underlayIp?: string;
  state: string;
  portApi: string;
  portSocket?: string;
  introspect: string;
  introspectSocket?: string;
  resync: string;
}

export function agentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the Cirrus agent of this host (programs the kernel for the ports bound here)')
    .option('--host <name>', "this host's name (its virtual-router)", os.hostname())
    .option('--underlay-ip <address>', 'tunnel endpoint address of this host')
    .option('--state <dir>', 'where port registrations are kept', `${process.env['CIRRUS_DATA'] ?? '/var/lib/cirrus'}/agent`)
    .option('--port-api <addr>', 'port API, HOST:PORT (TF: 127.0.0.1:9091)', '127.0.0.1:9091')
    .option('--port-socket <path>', 'also serve the port API on this unix socket', '/run/cirrus/agent.sock')
    .option('--introspect <addr>', 'introspect HTTP, HOST:PORT (TF: 8085)', '127.0.0.1:8085')
    .option('--introspect-socket <path>', 'also serve introspect on this unix socket (reachable from other namespaces)')
    .option('--resync <seconds>', 'full reconcile period', '10')
    .action(async (opts: AgentCliOptions, cmd: Command) => {
      const api = cmd.optsWithGlobals<{ api?: string }>().api ?? process.env['CIRRUS_API'] ?? 'http://127.0.0.1:8082';
      const resync = Number(opts.resync);
      if (!(resync >= 1 && resync <= 3600)) throw new CliError(`--resync: '${opts.resync}' is not 1-3600 seconds`);
      const { parseListen } = await import('../../roles/api.js');
      const { startAgent } = await import('../../roles/agent.js');
      const role = await startAgent({
        host: opts.host,
        ...(opts.underlayIp ? { underlayIp: opts.underlayIp } : {}),
        api,
        stateDir: opts.state,
        resyncMs: resync * 1000,
        portApi: parseListen(opts.portApi),
        ...(opts.portSocket ? { portSocket: opts.portSocket } : {}),
        introspect: parseListen(opts.introspect),
        ...(opts.introspectSocket ? { introspectSocket: opts.introspectSocket } : {}),
      }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') throw new CliError(`${e.message}: is another agent running in this namespace?`);
        throw e;
      });
      console.log(`cirrus agent ${opts.host}: port API on ${role.portApiUrl}${opts.portSocket ? ` and ${opts.portSocket}` : ''}, introspect on ${role.introspectUrl}${opts.introspectSocket ? ` and ${opts.introspectSocket}` : ''}, config from ${api}`);
      await new Promise<void>((resolve) => {
        const stop = () => void role.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
