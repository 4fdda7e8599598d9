// The cirrus command line.

import { Command, CommanderError } from 'commander';
import { CliError } from './client.js';
import { agentCommands } from './commands/agent.js';
import { applyCommands } from './commands/apply.js';
import { analyticsCommands } from './commands/analytics.js';
import { controlCommands } from './commands/control.js';
import { sgCommands } from './commands/sg.js';
import { traceCommands } from './commands/trace.js';
import { labCommands } from './commands/lab.js';
import { netnsCommands } from './commands/netns.js';
import { networkCommands } from './commands/network.js';
import { policyCommands } from './commands/policy.js';
import { portCommands } from './commands/port.js';
import { fipCommands } from './commands/fip.js';
import { serverCommands } from './commands/server.js';

export function buildProgram(): Command {
  const program = new Command('cirrus')
    .description('Cirrus: virtual networks for Linux on the upstream kernel data plane')
    .version('0.1.0')
    .option('--api <url>', 'config API URL (default: $CIRRUS_API or http://127.0.0.1:8082)')
    .option('--project <project>', 'project for names: PROJECT or DOMAIN:PROJECT (default: $CIRRUS_PROJECT or admin)')
    .option('-o, --output <format>', 'table (for people) or json (for scripts)', 'table')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  serverCommands(program);
  networkCommands(program);
  policyCommands(program);
  portCommands(program);
  fipCommands(program);
  sgCommands(program);
  traceCommands(program);
  controlCommands(program);
  agentCommands(program);
  analyticsCommands(program);
  netnsCommands(program);
  labCommands(program);
  applyCommands(program);
  const overrideAll = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(overrideAll);
  };
  overrideAll(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CliError) {
      console.error(`cirrus: ${e.message}`);
      return 1;
    }
    console.error(`cirrus: ${(e as Error).stack ?? String(e)}`);
    return 2;
  }
}
