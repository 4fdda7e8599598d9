// The plan: what the file wants against what the API holds. Pure.
//
// - wanted and missing: create;  wanted and present: unchanged, update or (a field the
//   object cannot change) replace;  marked by this topology and no longer wanted: delete.
// - an object the file wants that exists without this topology's mark is a conflict (it was
//   made by hand or by another file): apply refuses it, except for containers (project,
//   ipam, pool), which are used as they are.
// - creates and updates run in dependency order (model.ts KINDS), deletes after them in
//   the reverse order: references are added after their targets exist and removed
//   before their targets go.

import { CONTAINERS, IMMUTABLE, KINDS, type ActualObject, type DesiredObject, type Kind, keyOf } from './model.js';

export type Action = 'create' | 'update' | 'replace' | 'delete' | 'unchanged';

export interface Change {
  field: string;
  from: unknown;
  to: unknown;
}

export interface Step {
  action: Action;
  kind: Kind;
  fq: string[];
  desired?: DesiredObject;
  actual?: ActualObject;
  changes: Change[];
}

export interface Conflict {
  desired: DesiredObject;
  actual: ActualObject;
}

export interface Plan {
  steps: Step[];
  conflicts: Conflict[];
}

/** Whether `actual` satisfies `desired`: undefined (unmanaged) matches anything, arrays match element-wise. */
export function covers(desired: unknown, actual: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => covers(d, actual[i]));
  if (desired !== null && typeof desired === 'object') {
    if (actual === null || typeof actual !== 'object') return false;
    return Object.entries(desired).every(([k, d]) => covers(d, (actual as Record<string, unknown>)[k]));
  }
  return desired === actual;
}

export function diff(desired: DesiredObject, actual: ActualObject): Change[] {
  return Object.entries(desired.spec)
    .filter(([field, want]) => !covers(want, actual.spec[field]))
    .map(([field, want]) => ({ field, from: actual.spec[field], to: want }));
}

export function plan(topology: string, desired: DesiredObject[], actual: ActualObject[]): Plan {
  const present = new Map(actual.map((a) => [keyOf(a), a]));
  const wanted = new Set(desired.map(keyOf));
  const steps: Step[] = [];
  const conflicts: Conflict[] = [];
  for (const d of desired) {
    const a = present.get(keyOf(d));
    if (!a) {
      steps.push({ action: 'create', kind: d.kind, fq: d.fq, desired: d, changes: [] });
      continue;
    }
    if (a.owner !== topology && !CONTAINERS.has(d.kind)) {
      conflicts.push({ desired: d, actual: a });
      continue;
    }
    const changes = diff(d, a);
    const replace = changes.some((c) => IMMUTABLE[d.kind]?.includes(c.field));
    steps.push({ action: changes.length === 0 ? 'unchanged' : replace ? 'replace' : 'update', kind: d.kind, fq: d.fq, desired: d, actual: a, changes });
  }
  const deletes = actual
    .filter((a) => a.owner === topology && !wanted.has(keyOf(a)))
    .map((a): Step => ({ action: 'delete', kind: a.kind, fq: a.fq, actual: a, changes: [] }));
  const rank = (s: Step) => KINDS.indexOf(s.kind);
  // Array.prototype.sort is stable: within a kind, the file's order stays.
  steps.sort((x, y) => rank(x) - rank(y));
  deletes.sort((x, y) => rank(y) - rank(x));
  return { steps: [...steps, ...deletes], conflicts };
}

export function counts(p: Plan): Record<Action, number> {
  const c: Record<Action, number> = { create: 0, update: 0, replace: 0, delete: 0, unchanged: 0 };
  for (const s of p.steps) c[s.action]++;
  return c;
}
