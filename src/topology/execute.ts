// Carrying out a plan, step by step in its order. Each step is one API write (a workload:
// the lab's attach, which undoes itself on failure), and every object is created with its
// mark, so stopping at any point leaves objects that are whole and known to be ours: the
// next run plans only what is left.

import { type ApiClient, CliError } from '../cli/client.js';
import type { Say } from '../lab/up.js';
import { CONTAINERS } from './model.js';
import type { Action, Plan, Step } from './plan.js';
import { stepTitle } from './render.js';
import { API_KINDS, type ApiKind, createBody, updateBody } from './resources.js';
import { type LabTarget, createWorkload, deleteWorkload, replaceWorkload, updateWorkload } from './workloads.js';

export interface Executor {
  api: ApiClient;
  topology: string;
  project: string[];
  lab: LabTarget | undefined;
  say: Say;
}

const PAST: Record<Exclude<Action, 'unchanged'>, string> = { create: 'created', update: 'updated', replace: 'replaced', delete: 'deleted' };

/** Runs the plan's changes; returns how many were made. */
export async function execute(plan: Plan, x: Executor): Promise<number> {
  const changes = plan.steps.filter((s) => s.action !== 'unchanged');
  let done = 0;
  for (const step of changes) {
    const title = stepTitle(step, x.project);
    const action = step.action as keyof typeof PAST;
    try {
      const what = await run(step, x);
      x.say(`  ${PAST[action]} ${what ?? title}${step.action === 'update' ? ` (${step.changes.map((c) => c.field).join(', ')})` : ''}`);
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      // A container still holding objects of others stays; it is not in the way of anything.
      if (step.action === 'delete' && CONTAINERS.has(step.kind) && e.message.endsWith('(HTTP 409)')) {
        x.say(`  kept ${title}: ${e.message}`);
        continue;
      }
      throw new CliError(
        `cannot ${step.action} ${title}: ${e.message}\n` +
          `stopped after ${done} of ${changes.length} changes (those stay made); fix the cause and run the command again`,
      );
    }
    done++;
  }
  return done;
}

/** One step; returns a description when it says more than the title. */
async function run(step: Step, x: Executor): Promise<string | undefined> {
  if (step.kind === 'workload') {
    switch (step.action) {
      case 'create':
        return createWorkload(x.lab, step.desired!, x.topology);
      case 'update':
        return updateWorkload(x.lab, step).then(() => undefined);
      case 'replace':
        return replaceWorkload(x.lab, step, x.topology);
      default:
        return deleteWorkload(x.lab, step.actual!).then(() => undefined);
    }
  }
  const type = API_KINDS[step.kind as ApiKind].type;
  switch (step.action) {
    case 'create':
      await x.api.create(type, createBody(step.desired!, x.topology));
      return;
    case 'update':
      await x.api.update(type, step.actual!.uuid, updateBody(step.desired!, step.actual!));
      return;
    case 'replace':
      await x.api.delete(type, step.actual!.uuid);
      await x.api.create(type, createBody(step.desired!, x.topology));
      return;
    default:
      await x.api.delete(type, step.actual!.uuid);
  }
}
