// TF's analytics query (POST /analytics/query) over the flow samples: the body checked
// field by field (a bad one is a QueryError naming what is wrong: the route answers 400),
// then turned into one SQL statement over the store's relation, then its rows into TF's
// shapes (dotted addresses, flow uuids). Pure: the store runs the statement.
//
// FlowSeriesTable: the samples. With an aggregate (sum(bytes), flow_count) or a `T=<s>`
// bucket among select_fields, one row per distinct value of the other fields; else the raw
// samples (`T` is the sample time).
// FlowRecordTable: one row per flow, its counters summed over its samples in the range,
// its teardown time the latest known (absent while it lives).

import { formatIpv4, parseIpv4 } from '../util/ipv4.js';
import { COLUMNS, type ColumnKind, flowUuid } from './schema.js';
import type { Statement } from './store.js';

export class QueryError extends Error {}

export const TABLES = ['FlowRecordTable', 'FlowSeriesTable'] as const;
export type TableName = (typeof TABLES)[number];

/** TF's operators, by number and by name. */
export const OPS = { EQUAL: 1, NOT_EQUAL: 2, IN_RANGE: 3, NOT_IN_RANGE: 4, LEQ: 5, GEQ: 6, PREFIX: 7, REGEX: 8 } as const;
type Op = (typeof OPS)[keyof typeof OPS];

interface Condition {
  name: string;
  value: unknown;
  op: unknown;
  value2?: unknown;
}

export interface QueryBody {
  table: string;
  start_time: number | string;
  end_time?: number | string;
  select_fields: string[];
  where?: Condition[][];
  filter?: Condition[][];
  sort?: number;
  sort_fields?: string[];
  limit?: number;
}

/** Fields a query may name besides aggregates: the stored columns but the internal ones, plus the flow's uuid. */
const KIND = new Map<string, ColumnKind | 'uuid'>(COLUMNS.filter((c) => !['t', 'flow_hi', 'flow_lo'].includes(c.name)).map((c) => [c.name, c.kind]));
KIND.set('flowuuid', 'uuid');
const COUNTERS = ['bytes', 'packets', 'reverse_bytes', 'reverse_packets'];
/** Fields constant over a flow's samples: what `where` may test. */
const KEYS = [...KIND.keys()].filter((f) => !COUNTERS.includes(f) && f !== 'teardown_time');
const AGGREGATES = new Map<string, string>([...COUNTERS.map((c) => [`sum(${c})`, `sum(${c})`] as [string, string]), ['flow_count', 'count(DISTINCT (flow_hi, flow_lo))']]);

export const MAX_LIMIT = 100_000;
const DEFAULT_LIMIT = 10_000;

/** The schema TF's GET /analytics/table/<t>/schema shows. */
export function tableSchema(table: TableName): { type: string; columns: { name: string; datatype: string; index: boolean; suffixes: null }[] } {
  const datatype = (k: ColumnKind | 'uuid') => (k === 'string' || k === 'ip' || k === 'uuid' ? (k === 'uuid' ? 'uuid' : k === 'ip' ? 'ipv4' : 'string') : 'int');
  const fields = [...KIND].filter(([f]) => table === 'FlowRecordTable' || f !== 'flowuuid');
  const columns = fields.map(([name, k]) => ({ name, datatype: datatype(k), index: KEYS.includes(name), suffixes: null }));
  if (table === 'FlowSeriesTable') {
    columns.push({ name: 'T', datatype: 'int', index: false, suffixes: null }, { name: 'T=', datatype: 'int', index: false, suffixes: null });
    for (const a of AGGREGATES.keys()) columns.push({ name: a, datatype: 'int', index: false, suffixes: null });
  }
  return { type: 'FLOW', columns };
}

/** A time: µs since the epoch, or `now`, `now-10m` (s, m, h, d), against `nowMs`. */
export function parseTime(v: unknown, what: string, nowMs: number): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return Number(v);
    const m = /^now(?:([-+])(\d+)([smhd]))?$/.exec(v.trim());
    if (m) {
      const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[3] as 's' | 'm' | 'h' | 'd'] ?? 0;
      const offset = m[2] ? Number(m[2]) * unit * (m[1] === '-' ? -1 : 1) : 0;
      return (nowMs + offset) * 1000;
    }
  }
  throw new QueryError(`${what}: ${JSON.stringify(v)} is not microseconds since the epoch nor now[-N(s|m|h|d)]`);
}

export interface Plan {
  table: TableName;
  startUs: number;
  endUs: number;
  build: (relation: string) => Statement;
  /** The statement's rows in TF's shapes. */
  present: (rows: Record<string, unknown>[]) => Record<string, unknown>[];
}

/** Checks the body and plans it; throws QueryError naming the problem. */
export function planQuery(raw: unknown, nowMs = Date.now()): Plan {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new QueryError('the body must be a JSON object');
  const body = raw as Partial<QueryBody>;
  const known = new Set(['table', 'start_time', 'end_time', 'select_fields', 'where', 'filter', 'sort', 'sort_fields', 'limit', 'dir']);
  for (const k of Object.keys(body)) if (!known.has(k)) throw new QueryError(`unknown field '${k}' in the query`);
  if (!TABLES.includes(body.table as TableName)) throw new QueryError(`table: ${JSON.stringify(body.table)} is not one of ${TABLES.join(', ')}`);
  const table = body.table as TableName;
  if (body.start_time === undefined) throw new QueryError('start_time is required');
  const startUs = parseTime(body.start_time, 'start_time', nowMs);
  const endUs = body.end_time === undefined ? nowMs * 1000 : parseTime(body.end_time, 'end_time', nowMs);
  if (endUs < startUs) throw new QueryError('end_time is before start_time');
  if (!Array.isArray(body.select_fields) || !body.select_fields.length || body.select_fields.some((f) => typeof f !== 'string')) {
    throw new QueryError('select_fields must be a non-empty list of field names');
  }
  const select = [...new Set(body.select_fields)];
  const limit = body.limit === undefined ? DEFAULT_LIMIT : body.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new QueryError(`limit: ${JSON.stringify(body.limit)} is not 1-${MAX_LIMIT}`);
  if (body.sort !== undefined && body.sort !== 1 && body.sort !== 2) throw new QueryError('sort: 1 (ascending) or 2 (descending)');
  const sortFields = body.sort_fields ?? [];
  if (!Array.isArray(sortFields)) throw new QueryError('sort_fields must be a list of field names');
  for (const f of sortFields) if (!select.includes(f)) throw new QueryError(`sort_fields: '${f}' is not among select_fields`);

  const params: (string | number)[] = [];
  const outputs = table === 'FlowSeriesTable' ? seriesOutputs(select) : recordOutputs(select);
  const where = conditions(body.where, 'where', (name) => {
    if (!KEYS.includes(name)) return undefined;
    return { sql: name === 'flowuuid' ? "printf('%08x-0000-4000-8000-0000%08x', flow_hi, flow_lo)" : name, kind: KIND.get(name)! };
  }, params);
  const filter = conditions(body.filter, 'filter', (name) => {
    const o = outputs.find((x) => x.name === name);
    return o ? { sql: quote(name), kind: o.kind } : undefined;
  }, params);
  const range = `t BETWEEN ${Math.floor(startUs)} AND ${Math.floor(endUs)}`;
  const order = sortFields.length ? ` ORDER BY ${sortFields.map((f) => `${quote(f)} ${body.sort === 2 ? 'DESC' : 'ASC'}`).join(', ')}` : '';
  const build = (relation: string): Statement => {
    let inner: string;
    if (table === 'FlowRecordTable') {
      const cols = outputs.map((o) => `${o.sql} AS ${quote(o.name)}`).join(', ');
      inner = `SELECT ${cols} FROM ${relation} WHERE ${range}${where ? ` AND (${where})` : ''} GROUP BY flow_hi, flow_lo`;
    } else {
      const aggregated = outputs.some((o) => o.aggregate);
      const cols = outputs.map((o) => `${o.sql} AS ${quote(o.name)}`).join(', ');
      inner = `SELECT ${cols} FROM ${relation} WHERE ${range}${where ? ` AND (${where})` : ''}${aggregated ? ' GROUP BY ALL' : ''}`;
    }
    return { sql: `SELECT * FROM (${inner})${filter ? ` WHERE ${filter}` : ''}${order} LIMIT ${limit}`, params };
  };
  return { table, startUs, endUs, build, present: (rows) => rows.map((r) => presentRow(r, outputs)) };
}

interface Output {
  name: string;
  sql: string;
  kind: ColumnKind | 'uuid';
  aggregate?: boolean;
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function seriesOutputs(select: string[]): Output[] {
  const aggregated = select.some((f) => AGGREGATES.has(f) || /^T=/.test(f));
  return select.map((f) => {
    const agg = AGGREGATES.get(f);
    if (agg) return { name: f, sql: agg, kind: 'count', aggregate: true };
    const bucket = /^T=(\d+)$/.exec(f);
    if (bucket) {
      const us = Number(bucket[1]) * 1e6;
      if (!(us >= 1e6)) throw new QueryError(`select_fields: '${f}': the bucket must be at least 1 second`);
      return { name: f, sql: `(t // ${us}) * ${us}`, kind: 'time', aggregate: true };
    }
    if (f.startsWith('T=')) throw new QueryError(`select_fields: '${f}' is not T=<seconds>`);
    if (f === 'T') {
      if (aggregated) throw new QueryError("select_fields: 'T' (each sample's time) cannot go with aggregates; use T=<seconds>");
      return { name: f, sql: 't', kind: 'time' };
    }
    const kind = KIND.get(f);
    if (!kind || f === 'flowuuid') throw new QueryError(`select_fields: '${f}' is not a field of FlowSeriesTable`);
    if (aggregated && COUNTERS.includes(f)) throw new QueryError(`select_fields: '${f}' with aggregates: use sum(${f})`);
    return { name: f, sql: f, kind };
  });
}

function recordOutputs(select: string[]): Output[] {
  return select.map((f) => {
    const kind = KIND.get(f);
    if (!kind) throw new QueryError(`select_fields: '${f}' is not a field of FlowRecordTable${AGGREGATES.has(f) || f.startsWith('T') ? ' (aggregates and T are FlowSeriesTable\'s)' : ''}`);
    if (f === 'flowuuid') return { name: f, sql: 'any_value(flow_hi)::UBIGINT * 4294967296 + any_value(flow_lo)', kind };
    if (COUNTERS.includes(f)) return { name: f, sql: `sum(${f})`, kind };
    if (f === 'teardown_time') return { name: f, sql: 'max(teardown_time)', kind };
    if (f === 'setup_time') return { name: f, sql: 'min(setup_time)', kind };
    return { name: f, sql: `any_value(${f})`, kind };
  });
}

/** `where`/`filter` (OR of ANDs) as SQL with its values bound; '' when absent or empty. */
function conditions(
  list: unknown,
  what: string,
  field: (name: string) => { sql: string; kind: ColumnKind | 'uuid' } | undefined,
  params: (string | number)[],
): string {
  if (list === undefined || list === null) return '';
  if (!Array.isArray(list) || list.some((and) => !Array.isArray(and))) throw new QueryError(`${what} must be a list of lists of conditions (OR of ANDs)`);
  const ors = (list as unknown[][]).map((and, i) => {
    if (!and.length) throw new QueryError(`${what}[${i}] is empty`);
    return and.map((c, j) => condition(c, `${what}[${i}][${j}]`, field, params)).join(' AND ');
  });
  return ors.length ? ors.map((s) => `(${s})`).join(' OR ') : '';
}

function condition(
  raw: unknown,
  at: string,
  field: (name: string) => { sql: string; kind: ColumnKind | 'uuid' } | undefined,
  params: (string | number)[],
): string {
  if (typeof raw !== 'object' || raw === null) throw new QueryError(`${at}: a condition is {name, value, op[, value2]}`);
  const c = raw as Condition;
  if (typeof c.name !== 'string') throw new QueryError(`${at}: name missing`);
  const f = field(c.name);
  if (!f) throw new QueryError(`${at}: '${c.name}' cannot be used here`);
  const op = (typeof c.op === 'string' ? OPS[c.op as keyof typeof OPS] : c.op) as Op | undefined;
  if (!Object.values(OPS).includes(op as Op)) throw new QueryError(`${at}: op ${JSON.stringify(c.op)} is not one of ${Object.entries(OPS).map(([k, v]) => `${v} ${k}`).join(', ')}`);
  const bind = (v: unknown, which: string) => {
    params.push(scalar(v, f.kind, `${at}.${which} for ${c.name}`));
    return `$${params.length}`;
  };
  switch (op) {
    case OPS.EQUAL:
      return `${f.sql} = ${bind(c.value, 'value')}`;
    case OPS.NOT_EQUAL:
      return `${f.sql} IS DISTINCT FROM ${bind(c.value, 'value')}`;
    case OPS.LEQ:
      return `${f.sql} <= ${bind(c.value, 'value')}`;
    case OPS.GEQ:
      return `${f.sql} >= ${bind(c.value, 'value')}`;
    case OPS.IN_RANGE:
    case OPS.NOT_IN_RANGE: {
      if (c.value2 === undefined || c.value2 === null) throw new QueryError(`${at}: ${op === OPS.IN_RANGE ? 'IN_RANGE' : 'NOT_IN_RANGE'} needs value2`);
      const range = `${f.sql} BETWEEN ${bind(c.value, 'value')} AND ${bind(c.value2, 'value2')}`;
      return op === OPS.IN_RANGE ? range : `NOT (${range})`;
    }
    case OPS.PREFIX: {
      if (f.kind === 'ip') {
        const [lo, hi] = ipPrefix(c.value, `${at}.value`);
        params.push(lo, hi);
        return `${f.sql} BETWEEN $${params.length - 1} AND $${params.length}`;
      }
      if (f.kind !== 'string' && f.kind !== 'uuid') throw new QueryError(`${at}: PREFIX applies to strings and addresses, not ${c.name}`);
      return `starts_with(${f.sql}, ${bind(c.value, 'value')})`;
    }
    default: {
      if (f.kind !== 'string' && f.kind !== 'uuid') throw new QueryError(`${at}: REGEX applies to strings, not ${c.name}`);
      if (typeof c.value !== 'string') throw new QueryError(`${at}.value: a regular expression`);
      try {
        new RegExp(c.value);
      } catch (e) {
        throw new QueryError(`${at}.value: ${(e as Error).message}`);
      }
      return `regexp_matches(${f.sql}, ${bind(c.value, 'value')})`;
    }
  }
}

/** A condition's value as the column holds it. */
function scalar(v: unknown, kind: ColumnKind | 'uuid', at: string): string | number {
  if (kind === 'string' || kind === 'uuid') {
    if (typeof v !== 'string') throw new QueryError(`${at}: a string`);
    return v;
  }
  if (kind === 'ip') {
    const ip = typeof v === 'string' ? parseIpv4(v) : undefined;
    if (ip === undefined) throw new QueryError(`${at}: ${JSON.stringify(v)} is not an IPv4 address`);
    return ip;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) throw new QueryError(`${at}: ${JSON.stringify(v)} is not a non-negative integer`);
  return n;
}

/** "10.1.0.0/16", or whole octets "10.1" / "10.1.": the addresses they cover. */
function ipPrefix(v: unknown, at: string): [number, number] {
  if (typeof v !== 'string') throw new QueryError(`${at}: an address prefix (10.1.0.0/16 or 10.1.)`);
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(v);
  if (cidr) {
    const base = parseIpv4(cidr[1]!);
    const len = Number(cidr[2]);
    if (base === undefined || len > 32) throw new QueryError(`${at}: '${v}' is not an address prefix`);
    const size = 2 ** (32 - len);
    const lo = Math.floor(base / size) * size;
    return [lo, lo + size - 1];
  }
  const octets = v.replace(/\.$/, '').split('.');
  if (!octets.length || octets.length > 4 || octets.some((o) => !/^\d{1,3}$/.test(o) || Number(o) > 255)) throw new QueryError(`${at}: '${v}' is not an address prefix (10.1.0.0/16 or 10.1.)`);
  let lo = 0;
  for (let i = 0; i < 4; i++) lo = lo * 256 + (i < octets.length ? Number(octets[i]) : 0);
  return [lo, lo + 256 ** (4 - octets.length) - 1];
}

function presentRow(row: Record<string, unknown>, outputs: Output[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of outputs) {
    const v = row[o.name];
    if (v === null || v === undefined) out[o.name] = null;
    else if (o.kind === 'ip') out[o.name] = formatIpv4(Number(v));
    else if (o.kind === 'uuid') {
      const n = BigInt(v as bigint | number);
      out[o.name] = flowUuid(Number(n >> 32n), Number(n & 0xffffffffn));
    } else if (o.kind === 'string') out[o.name] = v;
    else out[o.name] = Number(v);
  }
  return out;
}
