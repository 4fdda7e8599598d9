// cirrus apply -f FILE | delete -f FILE: a topology file (docs/topology.md) made real, or
// removed, idempotently: the plan first (--dry-run: only the plan), then its changes.

import type { Command } from 'commander';
import { type Prepared, prepare } from '../../topology/apply.js';
import { execute } from '../../topology/execute.js';
import { planJson, planLines, planSummary } from '../../topology/render.js';
import { counts } from '../../topology/plan.js';
import { contextOf } from '../context.js';

interface Opts {
  file: string;
  dryRun?: boolean;
  lab?: string;
}

async function run(opts: Opts, cmd: Command, remove: boolean): Promise<void> {
  const ctx = contextOf(cmd);
  const p: Prepared = await prepare({ file: opts.file, ctx, remove, ...(opts.lab ? { lab: opts.lab } : {}) });
  const { loaded, plan, executor } = p;
  const header = {
    topology: loaded.name,
    file: loaded.file,
    api: executor.api.base,
    project: executor.project.join(':'),
    ...(executor.lab ? { lab: executor.lab.state.name } : {}),
  };
  const json = ctx.output === 'json';
  const changes = plan.steps.length - counts(plan).unchanged;
  if (!json) {
    console.log(`topology ${header.topology} (${header.file}) on ${header.api}${header.lab ? ` (lab ${header.lab})` : ''}, project ${header.project}:`);
    for (const line of planLines(plan, executor.project)) console.log(line);
    console.log(`plan: ${planSummary(plan)}`);
  }
  // Progress goes to stderr with -o json: stdout carries only the JSON document.
  const done = opts.dryRun || changes === 0 ? 0 : await execute(plan, { ...executor, say: json ? (l) => console.error(l) : (l) => console.log(l) });
  if (json) console.log(JSON.stringify({ ...header, dry_run: Boolean(opts.dryRun), plan: planJson(plan), changes_made: done }, null, 2));
  else if (opts.dryRun) console.log('dry run: nothing was changed');
  else if (changes === 0) console.log('nothing to change');
  else console.log(`${remove ? 'deleted' : 'applied'}: ${done} change${done === 1 ? '' : 's'} made`);
}

const fileOptions = (c: Command): Command =>
  c
    .requiredOption('-f, --file <file>', 'the topology file (YAML, see docs/topology.md)')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--lab <lab>', "the lab of the file's workloads; its API is used (default with workloads: $CIRRUS_LAB or cirrus)");

export function applyCommands(program: Command): void {
  fileOptions(
    program
      .command('apply')
      .description('create or update what a topology file declares (networks, policies, security groups, floating IPs, lab workloads); delete what it made and no longer declares'),
  ).action((opts: Opts, cmd: Command) => run(opts, cmd, false));
  fileOptions(program.command('delete').description('delete everything a topology file made (objects carrying its mark), in reverse dependency order')).action((opts: Opts, cmd: Command) =>
    run(opts, cmd, true),
  );
}
