// `apply -f` and `delete -f` from start to plan: read and check the file, choose the API
// (a lab's when the file has workloads or --lab names one), read what the API holds,
// and plan. The caller shows the plan and, unless it is a dry run, executes it.

import type { CliContext } from '../cli/context.js';
import { DEFAULT_LAB, checkLabName } from '../lab/layout.js';
import { requireState } from '../lab/state.js';
import { labContext } from '../lab/workloads.js';
import { checkExternalRefs, readActual } from './actual.js';
import { type DesiredState, desiredState } from './desired.js';
import type { Executor } from './execute.js';
import { type LoadedTopology, TopologyError, loadTopology } from './load.js';
import { type Plan, plan } from './plan.js';
import { stepTitle } from './render.js';
import type { LabTarget } from './workloads.js';

export interface ApplyRequest {
  file: string;
  ctx: CliContext;
  /** The lab of the workloads (default: $CIRRUS_LAB or `cirrus` when the file has workloads). */
  lab?: string;
  /** `delete -f`: plan the removal of everything the topology made. */
  remove?: boolean;
}

export interface Prepared {
  loaded: LoadedTopology;
  desired: DesiredState;
  plan: Plan;
  executor: Omit<Executor, 'say'>;
}

export async function prepare(req: ApplyRequest): Promise<Prepared> {
  const loaded = loadTopology(req.file);
  const desired = desiredState(loaded, req.ctx.project);
  const lab = labOf(req, loaded, desired);
  const api = lab?.ctx.api ?? req.ctx.api;
  const wanted: DesiredState = req.remove ? { ...desired, objects: [], external: [] } : desired;
  const actual = await readActual(api, loaded.name, wanted, lab);
  await checkExternalRefs(api, loaded, wanted, actual);
  const p = plan(loaded.name, wanted.objects, actual);
  if (p.conflicts.length) {
    const lines = p.conflicts.map(({ desired: d, actual: a }) => {
      const by = a.owner ? `by topology ${a.owner}` : 'by hand (it has no topology mark)';
      return `${loaded.where(d.at)}: ${stepTitle(d, desired.project)} exists and was made ${by}`;
    });
    throw new TopologyError(`${lines.join('\n')}\nrename these in the file, or delete the existing objects first; nothing was changed`);
  }
  return { loaded, desired, plan: p, executor: { api, topology: loaded.name, project: desired.project, lab } };
}

function labOf(req: ApplyRequest, loaded: LoadedTopology, desired: DesiredState): LabTarget | undefined {
  const workloads = loaded.topology.workloads ?? [];
  const name = req.lab ?? (workloads.length ? (process.env['CIRRUS_LAB'] ?? DEFAULT_LAB) : undefined);
  if (name === undefined) return undefined;
  const state = requireState(checkLabName(name));
  if (!req.remove) workloads.forEach((w, i) => {
    if (!state.hosts.some((h) => h.name === w.host)) loaded.fail(['workloads', i, 'host'], `lab '${state.name}' has no host '${w.host}' (it has ${state.hosts.map((h) => h.name).join(', ')})`);
  });
  return { state, ctx: labContext({ ...req.ctx, project: desired.project.join(':') }, state) };
}
