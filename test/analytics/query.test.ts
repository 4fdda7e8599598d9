// The query engine over a real store (DuckDB staging and Parquet windows, in a temporary
// directory): each TF operator, buckets, sorting and limits, FlowRecordTable's per-flow
// rows, and bad queries refused with what is wrong. Table-driven.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { DuckFlowStore, WINDOW_MS } from '../../src/analytics/duckdb-store.js';
import { QueryError, planQuery } from '../../src/analytics/query.js';
import { type FlowSample, encodeBatch } from '../../src/analytics/schema.js';
import { parseIpv4 } from '../../src/util/ipv4.js';
import { tempDataDir } from '../support/server.js';

const dir = tempDataDir();
let store: DuckFlowStore;
// Samples in the window before the current one (moved to Parquet by maintain) and in staging.
const NOW = Date.now();
const T0 = (Math.floor(NOW / WINDOW_MS) - 1) * WINDOW_MS;
const ip = (s: string) => parseIpv4(s)!;

function sample(over: Partial<FlowSample> & { at: number }): FlowSample {
  const { at, ...rest } = over;
  const t = (T0 + at * 1000) * 1000;
  return {
    t, flow_hi: 1, flow_lo: 1, vrouter: 'h1', vrouter_ip: ip('10.254.0.1'), other_vrouter_ip: ip('10.254.0.2'),
    sourcevn: 'd:p:red', destvn: 'd:p:red', sourceip: ip('10.1.0.1'), destip: ip('10.1.0.2'), protocol: 6, sport: 40000, dport: 80,
    direction_ing: 1, action: 'pass', nw_ace_uuid: null, sg_rule_uuid: null, setup_time: t - 1000, teardown_time: null,
    bytes: 100, packets: 1, reverse_bytes: 50, reverse_packets: 1, nat_sourceip: null, nat_destip: null, nat_sport: null, nat_dport: null,
    ...rest,
  };
}

const SAMPLES: FlowSample[] = [
  // flow 1: two samples (a live read, then the teardown)
  sample({ at: 10, flow_lo: 1, bytes: 1000, packets: 10 }),
  sample({ at: 70, flow_lo: 1, bytes: 500, packets: 5, teardown_time: (T0 + 70_000) * 1000 }),
  sample({ at: 20, flow_lo: 2, sourceip: ip('10.1.0.9'), dport: 443, bytes: 4000 }),
  sample({ at: 30, flow_lo: 3, sourcevn: 'd:p:green', sourceip: ip('10.2.0.5'), destvn: 'd:p:red', dport: 22, action: 'deny', nw_ace_uuid: 'rule-22', bytes: 60, reverse_bytes: 0 }),
  sample({ at: 130, flow_lo: 4, protocol: 17, dport: 53, sourceip: ip('10.1.0.9'), bytes: 80, vrouter: 'h2', direction_ing: 0 }),
  // staged: in the current window
  sample({ at: WINDOW_MS / 1000 + 5, flow_lo: 5, sourceip: ip('10.1.3.7'), dport: 8080, bytes: 7 }),
];

before(async () => {
  store = await DuckFlowStore.open({ dir, retention: { maxAgeMs: 86_400_000, maxBytes: 1e12 }, autoMaintain: false });
  await store.append('h1/00000001', 1, encodeBatch(SAMPLES));
  await store.maintain(T0 + WINDOW_MS + 61_000);
  const s = await store.stats();
  assert.deepEqual([s.files, s.staged, s.records], [1, 1, SAMPLES.length], 'one window moved to Parquet, one sample staged');
});
after(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const run = async (body: object) => {
  const plan = planQuery({ start_time: (T0 - 60_000) * 1000, end_time: (NOW + 60_000) * 1000, ...body }, NOW);
  return plan.present(await store.select(plan.startUs, plan.endUs, plan.build));
};
const series = (where: object[][], select = ['flow_count']) => run({ table: 'FlowSeriesTable', select_fields: select, where });

const WHERE_CASES: [string, object[][], number][] = [
  ['EQUAL on a network', [[{ name: 'sourcevn', value: 'd:p:green', op: 1 }]], 1],
  ['EQUAL by the operator\'s name, on an address', [[{ name: 'sourceip', value: '10.1.0.9', op: 'EQUAL' }]], 2],
  ['NOT_EQUAL', [[{ name: 'sourcevn', value: 'd:p:green', op: 2 }]], 4],
  ['IN_RANGE of ports (numbers as strings, as TF clients send)', [[{ name: 'dport', value: '50', op: 3, value2: '443' }]], 3],
  ['NOT_IN_RANGE', [[{ name: 'dport', value: 50, op: 4, value2: 443 }]], 2],
  ['LEQ', [[{ name: 'dport', value: 53, op: 5 }]], 2],
  ['GEQ', [[{ name: 'dport', value: 443, op: 6 }]], 2],
  ['PREFIX of an address, whole octets', [[{ name: 'sourceip', value: '10.1.', op: 7 }]], 4],
  ['PREFIX of an address, CIDR', [[{ name: 'sourceip', value: '10.1.3.0/24', op: 7 }]], 1],
  ['PREFIX of a string', [[{ name: 'sourcevn', value: 'd:p:gr', op: 7 }]], 1],
  ['REGEX', [[{ name: 'vrouter', value: '^h[2-9]$', op: 8 }]], 1],
  ['AND within a list', [[{ name: 'sourcevn', value: 'd:p:red', op: 1 }, { name: 'protocol', value: 17, op: 1 }]], 1],
  ['OR across lists', [[{ name: 'dport', value: 22, op: 1 }], [{ name: 'dport', value: 53, op: 1 }]], 2],
  ['a rule uuid', [[{ name: 'nw_ace_uuid', value: 'rule-22', op: 1 }]], 1],
];

for (const [name, where, flows] of WHERE_CASES) {
  test(`where: ${name}`, async () => {
    assert.deepEqual(await series(where), [{ flow_count: flows }]);
  });
}

test('T=<s> buckets sum the samples of each bucket; sort and limit', async () => {
  const rows = await run({ table: 'FlowSeriesTable', select_fields: ['T=60', 'sum(bytes)', 'sum(packets)'], where: [[{ name: 'vrouter', value: 'h1', op: 1 }]], sort: 1, sort_fields: ['T=60'] });
  const m = (s: number) => (T0 + s * 1000) * 1000;
  assert.deepEqual(rows, [
    { 'T=60': m(0), 'sum(bytes)': 1000 + 4000 + 60, 'sum(packets)': 12 },
    { 'T=60': m(60), 'sum(bytes)': 500, 'sum(packets)': 5 },
    { 'T=60': m(600), 'sum(bytes)': 7, 'sum(packets)': 1 },
  ]);
  const top = await run({ table: 'FlowSeriesTable', select_fields: ['sourceip', 'sum(bytes)'], sort: 2, sort_fields: ['sum(bytes)'], limit: 2 });
  assert.deepEqual(top, [{ sourceip: '10.1.0.9', 'sum(bytes)': 4080 }, { sourceip: '10.1.0.1', 'sum(bytes)': 1500 }]);
});

test('raw samples with their time T; filter applies to the output', async () => {
  const rows = await run({ table: 'FlowSeriesTable', select_fields: ['T', 'dport', 'bytes'], sort: 1, sort_fields: ['T'], filter: [[{ name: 'bytes', value: 1000, op: 6 }]] });
  assert.deepEqual(rows, [{ T: (T0 + 10_000) * 1000, dport: 80, bytes: 1000 }, { T: (T0 + 20_000) * 1000, dport: 443, bytes: 4000 }]);
});

test('FlowRecordTable: one row per flow, counters summed, teardown once known, the flow uuid', async () => {
  const rows = await run({ table: 'FlowRecordTable', select_fields: ['flowuuid', 'sourceip', 'bytes', 'packets', 'setup_time', 'teardown_time', 'action'], where: [[{ name: 'dport', value: 80, op: 1 }]] });
  assert.deepEqual(rows, [{ flowuuid: '00000001-0000-4000-8000-000000000001', sourceip: '10.1.0.1', bytes: 1500, packets: 15, setup_time: (T0 + 10_000) * 1000 - 1000, teardown_time: (T0 + 70_000) * 1000, action: 'pass' }]);
  const byUuid = await run({ table: 'FlowRecordTable', select_fields: ['dport'], where: [[{ name: 'flowuuid', value: '00000001-0000-4000-8000-000000000003', op: 1 }]] });
  assert.deepEqual(byUuid, [{ dport: 22 }]);
});

test('the time range: start_time and end_time (µs or now-N) select samples', async () => {
  const plan = planQuery({ table: 'FlowSeriesTable', start_time: (T0 + 60_000) * 1000, end_time: (T0 + 200_000) * 1000, select_fields: ['flow_count'] }, NOW);
  assert.deepEqual(plan.present(await store.select(plan.startUs, plan.endUs, plan.build)), [{ flow_count: 2 }], 'flow 1 (its teardown sample) and flow 4');
  const recent = planQuery({ table: 'FlowSeriesTable', start_time: 'now-10s', end_time: 'now', select_fields: ['flow_count'] }, T0 + WINDOW_MS + 10_000);
  assert.deepEqual(recent.present(await store.select(recent.startUs, recent.endUs, recent.build)), [{ flow_count: 1 }]);
});

const BAD: [string, object, RegExp][] = [
  ['no table', { select_fields: ['T'], start_time: 'now-1h' }, /^table: undefined is not one of FlowRecordTable, FlowSeriesTable$/],
  ['an unknown table', { table: 'MessageTable', select_fields: ['T'], start_time: 'now-1h' }, /table: "MessageTable"/],
  ['no start_time', { table: 'FlowSeriesTable', select_fields: ['T'] }, /start_time is required/],
  ['a bad time', { table: 'FlowSeriesTable', select_fields: ['T'], start_time: 'yesterday' }, /start_time: "yesterday" is not microseconds/],
  ['end before start', { table: 'FlowSeriesTable', select_fields: ['T'], start_time: 'now', end_time: 'now-1h' }, /end_time is before start_time/],
  ['no select_fields', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: [] }, /select_fields must be a non-empty list/],
  ['an unknown field', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn', 'bogus'] }, /select_fields: 'bogus' is not a field of FlowSeriesTable/],
  ['an aggregate on FlowRecordTable', { table: 'FlowRecordTable', start_time: 'now-1h', select_fields: ['sum(bytes)'] }, /aggregates and T are FlowSeriesTable's/],
  ['a bad bucket', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['T=abc'] }, /'T=abc' is not T=<seconds>/],
  ['T with aggregates', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['T', 'sum(bytes)'] }, /'T' .* cannot go with aggregates/],
  ['a raw counter with aggregates', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['bytes', 'flow_count'] }, /use sum\(bytes\)/],
  ['sort by a field not selected', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], sort_fields: ['destvn'] }, /sort_fields: 'destvn' is not among select_fields/],
  ['a bad sort', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], sort: 3 }, /sort: 1 \(ascending\) or 2/],
  ['a limit too large', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], limit: 1e9 }, /limit: 1000000000 is not 1-100000/],
  ['where not a list of lists', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [{ name: 'sourcevn', value: 'x', op: 1 }] }, /where must be a list of lists/],
  ['where on a counter', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'bytes', value: 1, op: 1 }]] }, /where\[0\]\[0\]: 'bytes' cannot be used here/],
  ['an unknown op', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'dport', value: 1, op: 9 }]] }, /where\[0\]\[0\]: op 9 is not one of 1 EQUAL/],
  ['a bad address', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'sourceip', value: '10.1.1', op: 1 }]] }, /where\[0\]\[0\]\.value for sourceip: "10.1.1" is not an IPv4 address/],
  ['a port that is not a number', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'dport', value: 'http', op: 1 }]] }, /"http" is not a non-negative integer/],
  ['IN_RANGE without value2', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'dport', value: 1, op: 3 }]] }, /IN_RANGE needs value2/],
  ['REGEX on a number', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'dport', value: '8.*', op: 8 }]] }, /REGEX applies to strings, not dport/],
  ['a broken regular expression', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where: [[{ name: 'sourcevn', value: '(', op: 8 }]] }, /where\[0\]\[0\]\.value: Invalid regular expression/],
  ['an unknown key', { table: 'FlowSeriesTable', start_time: 'now-1h', select_fields: ['sourcevn'], where_clause: [] }, /unknown field 'where_clause'/],
];

for (const [name, body, message] of BAD) {
  test(`a bad query is refused: ${name}`, () => {
    assert.throws(() => planQuery(body, NOW), (e: Error) => e instanceof QueryError && message.test(e.message));
  });
}
