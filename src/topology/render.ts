// The plan for people: one line per object (+ create, ~ update, ± replace, - delete,
// = unchanged) with what it is or what changes; and for scripts (-o json).

import { LABELS } from './model.js';
import { type Action, type Plan, type Step, counts } from './plan.js';

const SIGNS: Record<Action, string> = { create: '+', update: '~', replace: '±', delete: '-', unchanged: '=' };

/** Names without the file's project: `red`, `public:floating-ip-pool:web`. */
export function displayName(fq: string[], project: string[]): string {
  const inProject = fq.length > project.length && project.every((p, i) => fq[i] === p);
  return (inProject ? fq.slice(project.length) : fq).join(':');
}

export function stepTitle(s: Pick<Step, 'kind' | 'fq'>, project: string[]): string {
  return `${LABELS[s.kind]} ${displayName(s.fq, project)}`;
}

function show(field: string, v: unknown, project: string[]): string {
  const prefix = `${project.join(':')}:`;
  const text = (x: unknown): string => {
    if (typeof x === 'string') return x.startsWith(prefix) ? x.slice(prefix.length) : x;
    if (x !== null && typeof x === 'object' && 'cidr' in x) {
      const s = x as { cidr: string; gateway?: string };
      return s.gateway ? `${s.cidr} gw ${s.gateway}` : s.cidr;
    }
    return JSON.stringify(x);
  };
  if (field === 'rules' && Array.isArray(v)) return `${v.length} rule${v.length === 1 ? '' : 's'}`;
  if (field === 'command' && Array.isArray(v)) return v.length ? v.join(' ') : '(none)';
  if (Array.isArray(v)) return `[${v.map(text).join(', ')}]`;
  return v === undefined ? '(unset)' : text(v);
}

/** What a new object will be: its defined, non-default fields. */
function summary(s: Step, project: string[]): string {
  const spec = s.desired?.spec ?? {};
  return Object.entries(spec)
    .filter(([k, v]) => v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0) && k !== 'attached' && k !== 'running')
    .map(([k, v]) => (v === true ? k : k === 'rules' ? show(k, v, project) : `${k} ${show(k, v, project)}`))
    .join('; ');
}

function detail(s: Step, project: string[]): string {
  switch (s.action) {
    case 'create':
      return summary(s, project);
    case 'update':
    case 'replace':
      return s.changes.map((c) => `${c.field}: ${show(c.field, c.from, project)} → ${show(c.field, c.to, project)}`).join('; ');
    default:
      return '';
  }
}

export function planLines(plan: Plan, project: string[]): string[] {
  const titles = plan.steps.map((s) => stepTitle(s, project));
  const width = Math.max(0, ...titles.map((t) => t.length));
  return plan.steps.map((s, i) => {
    const d = detail(s, project);
    return `  ${SIGNS[s.action]} ${d ? titles[i]!.padEnd(width) + '  ' + d : titles[i]}`.trimEnd();
  });
}

export function planSummary(plan: Plan): string {
  const c = counts(plan);
  return `${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to delete, ${c.unchanged} unchanged`;
}

export function planJson(plan: Plan): Record<string, unknown>[] {
  return plan.steps.map((s) => ({
    action: s.action,
    kind: s.kind,
    fq_name: s.fq,
    ...(s.actual ? { uuid: s.actual.uuid } : {}),
    ...(s.changes.length ? { changes: s.changes } : {}),
  }));
}
