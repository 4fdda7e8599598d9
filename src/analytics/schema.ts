// A flow sample: what an agent ships and the store keeps, one row per flow and sampling
// interval (a short flow is one row: its teardown; a long one has a row per counter read,
// each with what it carried since the last). The columns below are the wire format, the
// stored layout and the queryable fields of FlowRecordTable/FlowSeriesTable at once.

/** How a column is carried and stored. `ip`: IPv4 as an unsigned 32-bit integer; `time`: µs since the epoch. */
export type ColumnKind = 'string' | 'ip' | 'u8' | 'u16' | 'u32' | 'time' | 'count';

export interface Column {
  name: string;
  kind: ColumnKind;
  /** May be null (absent): teardown of a live flow, NAT of an untranslated one. */
  nullable?: boolean;
}

/**
 * Stored columns, in order. `t` is when the sample was taken; the flow's uuid is
 * `flow_hi` (random per agent run) and `flow_lo` (the agent's flow counter), so that it costs
 * almost nothing on disk (a random 16-byte uuid would be 40% of a record).
 */
export const COLUMNS: readonly Column[] = [
  { name: 't', kind: 'time' },
  { name: 'flow_hi', kind: 'u32' },
  { name: 'flow_lo', kind: 'u32' },
  { name: 'vrouter', kind: 'string' },
  { name: 'vrouter_ip', kind: 'ip', nullable: true },
  { name: 'other_vrouter_ip', kind: 'ip', nullable: true },
  { name: 'sourcevn', kind: 'string' },
  { name: 'destvn', kind: 'string' },
  { name: 'sourceip', kind: 'ip' },
  { name: 'destip', kind: 'ip' },
  { name: 'protocol', kind: 'u8' },
  { name: 'sport', kind: 'u16' },
  { name: 'dport', kind: 'u16' },
  { name: 'direction_ing', kind: 'u8' },
  { name: 'action', kind: 'string' },
  { name: 'nw_ace_uuid', kind: 'string', nullable: true },
  { name: 'sg_rule_uuid', kind: 'string', nullable: true },
  { name: 'setup_time', kind: 'time' },
  { name: 'teardown_time', kind: 'time', nullable: true },
  { name: 'bytes', kind: 'count' },
  { name: 'packets', kind: 'count' },
  { name: 'reverse_bytes', kind: 'count' },
  { name: 'reverse_packets', kind: 'count' },
  { name: 'nat_sourceip', kind: 'ip', nullable: true },
  { name: 'nat_destip', kind: 'ip', nullable: true },
  { name: 'nat_sport', kind: 'u16', nullable: true },
  { name: 'nat_dport', kind: 'u16', nullable: true },
];

export type ColumnName = (typeof COLUMNS)[number]['name'];

/** One sample as the agent builds it (strings and numbers; null where a column allows it). */
export interface FlowSample {
  t: number;
  flow_hi: number;
  flow_lo: number;
  vrouter: string;
  vrouter_ip: number | null;
  other_vrouter_ip: number | null;
  sourcevn: string;
  destvn: string;
  sourceip: number;
  destip: number;
  protocol: number;
  sport: number;
  dport: number;
  /** 1: the flow entered this host from a local workload (its source is here); 0: it arrived for one. */
  direction_ing: 0 | 1;
  action: 'pass' | 'deny';
  nw_ace_uuid: string | null;
  sg_rule_uuid: string | null;
  setup_time: number;
  teardown_time: number | null;
  bytes: number;
  packets: number;
  reverse_bytes: number;
  reverse_packets: number;
  nat_sourceip: number | null;
  nat_destip: number | null;
  nat_sport: number | null;
  nat_dport: number | null;
}

/**
 * A batch on the wire and into the store: one array per column; string columns hold indexes
 * into `dict` (the few network names, hosts and rule uuids repeat in every row).
 */
export interface FlowBatch {
  count: number;
  dict: string[];
  cols: Record<string, (number | null)[]>;
}

const MAX: Record<Exclude<ColumnKind, 'string' | 'time' | 'count'>, number> = { ip: 0xffffffff, u8: 0xff, u16: 0xffff, u32: 0xffffffff };

/** Encodes samples as one batch. */
export function encodeBatch(samples: readonly FlowSample[]): FlowBatch {
  const dict: string[] = [];
  const index = new Map<string, number>();
  const code = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      index.set(s, (i = dict.length));
      dict.push(s);
    }
    return i;
  };
  const cols: FlowBatch['cols'] = {};
  for (const c of COLUMNS) {
    const out = new Array<number | null>(samples.length);
    const key = c.name as keyof FlowSample;
    for (let i = 0; i < samples.length; i++) {
      const v = samples[i]![key];
      out[i] = v === null ? null : c.kind === 'string' ? code(v as string) : (v as number);
    }
    cols[c.name] = out;
  }
  return { count: samples.length, dict, cols };
}

/**
 * Checks a batch from the wire: every column present, as long as `count`, each value of its
 * column's kind (null only where allowed); string codes inside `dict`. Returns why not, or
 * undefined when it is good.
 */
export function checkBatch(b: unknown, maxCount: number): string | undefined {
  if (typeof b !== 'object' || b === null) return 'batch: not an object';
  const { count, dict, cols } = b as Partial<FlowBatch>;
  if (!Number.isInteger(count) || count! < 1 || count! > maxCount) return `batch: count must be 1-${maxCount}`;
  if (!Array.isArray(dict) || dict.length > count! * COLUMNS.length || dict.some((s) => typeof s !== 'string' || s.length > 512)) return 'batch: dict must be strings (at most 512 characters)';
  if (typeof cols !== 'object' || cols === null) return 'batch: cols missing';
  for (const c of COLUMNS) {
    const a = (cols as Record<string, unknown>)[c.name];
    if (!Array.isArray(a) || a.length !== count) return `batch: column ${c.name} must have ${count} values`;
    const max = c.kind === 'string' ? dict.length - 1 : c.kind === 'time' || c.kind === 'count' ? Number.MAX_SAFE_INTEGER : MAX[c.kind];
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v === null) {
        if (!c.nullable) return `batch: column ${c.name} row ${i} is null`;
        continue;
      }
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) return `batch: column ${c.name} row ${i}: ${JSON.stringify(v)} is not ${c.kind === 'string' ? 'a dict index' : `an integer 0-${max}`}`;
    }
  }
  return undefined;
}

/** The flow's uuid from its two halves (the layout of a uuid, not a random one). */
export function flowUuid(hi: number, lo: number): string {
  const h = hi.toString(16).padStart(8, '0');
  const l = lo.toString(16).padStart(8, '0');
  return `${h}-0000-4000-8000-0000${l}`;
}
