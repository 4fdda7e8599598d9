// Query parameters as TF's clients send them: presence flags, Python-style booleans,
// comma-separated lists, `filters=k=="json",...`.

import type { ListQuery } from '../config/service.js';
import { BadRequest } from '../config/errors.js';

export type Query = Record<string, string | string[] | undefined>;

function single(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** `?flag`, `?flag=True`, `?flag=false`...; absent → `fallback`. */
export function flag(q: Query, name: string, fallback = false): boolean {
  const v = single(q, name);
  if (v === undefined) return fallback;
  const s = v.toLowerCase();
  if (s === '' || s === 'true' || s === '1' || s === 'yes') return true;
  if (s === 'false' || s === '0' || s === 'no' || s === 'none') return false;
  throw new BadRequest(`${name}: '${v}' is not a boolean (True or False)`, name);
}

export function csv(q: Query, name: string): string[] | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  const items = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

function integer(q: Query, name: string): number | undefined {
  const v = single(q, name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new BadRequest(`${name}: '${v}' is not a positive integer`, name);
  return Number(v);
}

/** Parses `a=="x",b==3` (values are JSON; bare words are taken as strings). */
export function parseFilters(text: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  const parts = text.split(',');
  for (let i = 0; i < parts.length; i++) {
    let piece = parts[i]!;
    const eq = piece.indexOf('==');
    if (eq < 0) throw new BadRequest(`filters: '${piece}' is not name==value`, 'filters');
    const name = piece.slice(0, eq).trim();
    let raw = piece.slice(eq + 2);
    // A JSON string value may itself contain commas: extend until it parses.
    while (raw.trimStart().startsWith('"') && !parsesAsJson(raw) && i + 1 < parts.length) raw += ',' + parts[++i];
    piece = raw;
    out.push([name, parsesAsJson(piece) ? JSON.parse(piece) : piece]);
  }
  return out;
}

function parsesAsJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

export function fieldsOf(q: Query): Set<string> | undefined {
  const f = csv(q, 'fields');
  return f ? new Set(f) : undefined;
}

/** The list filters of a GET /<type>s query (or of a list-bulk-collection body turned into one). */
export function listQuery(q: Query, parentUuidOfFqName: (fq: string[]) => string | undefined): ListQuery {
  const out: ListQuery = {};
  const parentIds = csv(q, 'parent_id');
  if (parentIds) out.parentUuids = parentIds;
  const parentFq = single(q, 'parent_fq_name_str');
  if (parentFq) out.parentUuids = [...(out.parentUuids ?? []), parentUuidOfFqName(parentFq.split(':')) ?? 'none'];
  const backRefs = csv(q, 'back_ref_id');
  if (backRefs) out.backRefUuids = backRefs;
  const uuids = csv(q, 'obj_uuids');
  if (uuids) out.uuids = uuids;
  const fqNames = csv(q, 'fq_names');
  if (fqNames) out.fqNames = fqNames.map((s) => s.split(':'));
  const filters = single(q, 'filters');
  if (filters) out.filters = parseFilters(filters);
  if (flag(q, 'shared')) out.shared = true;
  const limit = integer(q, 'page_limit');
  if (limit !== undefined) out.pageLimit = limit;
  const marker = single(q, 'page_marker');
  if (marker) out.pageMarker = marker;
  return out;
}
