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

/** Values of a column as carried and stored: `time`/`count` as int64, strings as codes into the batch's `dict`. */
export type ColumnValues = Uint8Array | Uint16Array | Uint32Array | BigInt64Array;

export interface ColumnData {
  values: ColumnValues;
  /**
   * Nullable columns only: which rows hold a value, DuckDB's validity layout (bit i % 8 of
   * byte i >> 3 set: row i present; a null row's value is 0).
   */
  valid?: Uint8Array;
}

/**
 * A batch on the wire (frame.ts) and into the store: one typed array per column, in COLUMNS
 * order; string columns hold indexes into `dict` (the few network names, hosts and rule
 * uuids repeat in every row).
 */
export interface FlowBatch {
  count: number;
  dict: string[];
  cols: ColumnData[];
}

/** Bytes per value of each kind (int64 for times and counters: µs and byte counts pass 2^32). */
export const WIDTH: Record<ColumnKind, 1 | 2 | 4 | 8> = { string: 4, ip: 4, u8: 1, u16: 2, u32: 4, time: 8, count: 8 };

export function newValues(kind: ColumnKind, n: number): ColumnValues;
export function newValues(kind: ColumnKind, n: number, buffer: ArrayBuffer, offset: number): ColumnValues;
export function newValues(kind: ColumnKind, n: number, buffer?: ArrayBuffer, offset = 0): ColumnValues {
  const b = buffer ?? new ArrayBuffer(n * WIDTH[kind]);
  switch (WIDTH[kind]) {
    case 1:
      return new Uint8Array(b, offset, n);
    case 2:
      return new Uint16Array(b, offset, n);
    case 4:
      return new Uint32Array(b, offset, n);
    case 8:
      return new BigInt64Array(b, offset, n);
  }
}

type RowEncoder = (samples: readonly FlowSample[], from: number, n: number, out: (Uint32Array | ColumnValues)[], valid: (Uint8Array | undefined)[], code: (s: string) => number) => void;

/**
 * Writes samples[from, from + n) into the columns, one row at a time. Compiled once from
 * COLUMNS so that every field is a static property load (a keyed load `sample[name]` per
 * value cost the sender more than everything else). int64 goes as two 32-bit halves
 * (`out` holds a Uint32Array view for those): no BigInt per value.
 */
const encodeRows = new Function(
  'samples',
  'from',
  'n',
  'out',
  'valid',
  'code',
  [
    ...COLUMNS.map((_c, j) => `const o${j} = out[${j}], m${j} = valid[${j}];`),
    'for (let i = 0; i < n; i++) {',
    '  const s = samples[from + i]; let v;',
    ...COLUMNS.map((c, j) => {
      const put = c.kind === 'string' ? `o${j}[i] = code(v);` : WIDTH[c.kind] === 8 ? `o${j}[2 * i] = v >>> 0; o${j}[2 * i + 1] = Math.floor(v / 4294967296);` : `o${j}[i] = v;`;
      return `  v = s.${c.name}; ${c.nullable ? `if (v !== null) { m${j}[i >> 3] |= 1 << (i & 7); ${put} }` : put}`;
    }),
    '}',
  ].join('\n'),
) as RowEncoder;

/** Encodes samples[from, to) as one batch. */
export function encodeBatch(samples: readonly FlowSample[], from = 0, to = samples.length): FlowBatch {
  const n = to - from;
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
  const cols: ColumnData[] = COLUMNS.map((c) => (c.nullable ? { values: newValues(c.kind, n), valid: new Uint8Array((n + 7) >> 3) } : { values: newValues(c.kind, n) }));
  const out = cols.map((c) => (c.values instanceof BigInt64Array ? new Uint32Array(c.values.buffer) : c.values));
  encodeRows(samples, from, n, out, cols.map((c) => c.valid), code);
  return { count: n, dict, cols };
}

/** Whether row i of a column holds a value. */
export const isPresent = (col: ColumnData, i: number): boolean => !col.valid || (col.valid[i >> 3]! & (1 << (i & 7))) !== 0;

/** The flow's uuid from its two halves (the layout of a uuid, not a random one). */
export function flowUuid(hi: number, lo: number): string {
  const h = hi.toString(16).padStart(8, '0');
  const l = lo.toString(16).padStart(8, '0');
  return `${h}-0000-4000-8000-0000${l}`;
}
