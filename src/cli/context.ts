// What every CLI command gets from the global options.

import type { Command } from 'commander';
import { ApiClient, CliError } from './client.js';
import type { OutputFormat } from './output.js';

export interface CliContext {
  api: ApiClient;
  project: string;
  output: OutputFormat;
}

export function contextOf(cmd: Command): CliContext {
  const o = cmd.optsWithGlobals<{ api?: string; project?: string; output?: string }>();
  const output = o.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw new CliError(`-o: '${output}' is not table or json`);
  return { api: ApiClient.fromEnv(o.api), project: o.project ?? process.env['CIRRUS_PROJECT'] ?? 'admin', output };
}
