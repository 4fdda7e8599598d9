// The demo topology of the first run is a topology file, examples/demo.yaml (the seeds'
// scenario): `lab up --demo` applies it to the lab as `cirrus apply -f` would, so a
// second run changes nothing and repairs what went missing.

import { fileURLToPath } from 'node:url';
import type { CliContext } from '../cli/context.js';
import { prepare } from '../topology/apply.js';
import { execute } from '../topology/execute.js';
import { loadTopology } from '../topology/load.js';
import type { Say } from './up.js';
import type { LabState } from './state.js';

/** examples/demo.yaml of this checkout (this file is dist/src/lab/demo.js). */
export const DEMO_FILE = fileURLToPath(new URL('../../../examples/demo.yaml', import.meta.url));

export const demoWorkloads = () => loadTopology(DEMO_FILE).topology.workloads ?? [];

export async function buildDemo(ctx: CliContext, state: LabState, say: Say): Promise<void> {
  const { plan, executor } = await prepare({ file: DEMO_FILE, ctx, lab: state.name });
  if (plan.steps.every((s) => s.action === 'unchanged')) return say('  nothing to change');
  await execute(plan, { ...executor, say });
}
