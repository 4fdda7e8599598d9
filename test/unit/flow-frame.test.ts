// The flow channel's binary batch frame: samples survive encode → frame → decode exactly
// (nulls, int64 past 2^32, non-ASCII strings, one row and a full batch), and malformed
// frames are refused with what is wrong (table-driven), never half-read.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_BATCH } from '../../src/analytics/channel.js';
import { FRAME_VERSION, FrameError, decodeFrame, encodeFrame } from '../../src/analytics/frame.js';
import { COLUMNS, type FlowBatch, type FlowSample, WIDTH, encodeBatch, isPresent } from '../../src/analytics/schema.js';
import { syntheticFlows } from '../support/flows.js';

/** The samples a batch holds, rebuilt row by row from its columns. */
function samplesOf(batch: FlowBatch): FlowSample[] {
  const rows: FlowSample[] = [];
  for (let i = 0; i < batch.count; i++) {
    const row: Record<string, unknown> = {};
    COLUMNS.forEach((c, ci) => {
      const col = batch.cols[ci]!;
      const v = col.values[i]!;
      row[c.name] = !isPresent(col, i) ? null : c.kind === 'string' ? batch.dict[v as number] : Number(v);
    });
    rows.push(row as unknown as FlowSample);
  }
  return rows;
}

const now = Date.now();
const synthetic = syntheticFlows({ seed: 3, startMs: now - 60_000, endMs: now });
const odd: FlowSample = {
  ...synthetic(1)[0]!,
  vrouter: 'hôte-ü-🙂',
  nw_ace_uuid: 'x'.repeat(512),
  sg_rule_uuid: null,
  teardown_time: null,
  bytes: Number.MAX_SAFE_INTEGER,
  packets: 2 ** 32 + 5,
  nat_sourceip: 0xffffffff,
  nat_destip: 0,
  nat_sport: 65535,
  nat_dport: null,
};

test('a frame decodes to exactly the samples encoded: nulls, int64, non-ASCII strings, any slice', () => {
  const many = synthetic(MAX_BATCH + 100);
  const cases: [string, FlowSample[], number, number][] = [
    ['one odd row', [odd], 0, 1],
    ['a full batch', many, 0, MAX_BATCH],
    ['a slice from an unaligned row', many, 37, 37 + 1000],
  ];
  for (const [name, samples, from, to] of cases) {
    const frame = encodeFrame(42, encodeBatch(samples, from, to));
    assert.equal(frame.length % 8, 0, name);
    const { first, batch } = decodeFrame(frame, MAX_BATCH);
    assert.equal(first, 42, name);
    assert.deepEqual(samplesOf(batch), samples.slice(from, to), name);
  }
  // The receiver may get the frame at any offset of a larger buffer (ws pools small messages).
  const frame = encodeFrame(7, encodeBatch([odd, ...synthetic(9)]));
  const shifted = Buffer.alloc(frame.length + 3);
  shifted.set(frame, 3);
  assert.deepEqual(samplesOf(decodeFrame(shifted.subarray(3), MAX_BATCH).batch)[0], odd);
});

/** Byte offsets inside a frame of `rows` rows and dict `dict`. */
function layout(rows: number, dict: string[]) {
  const pad8 = (n: number) => (n + 7) & ~7;
  const dictBytes = dict.reduce((n, s) => n + Buffer.byteLength(s), 0);
  let at = 24 + pad8(dict.length * 2 + dictBytes);
  const column: Record<string, number> = {};
  for (const c of COLUMNS) {
    if (c.nullable) at += pad8((rows + 7) >> 3);
    column[c.name] = at;
    at += pad8(rows * WIDTH[c.kind]);
  }
  return { dictStart: 24 + dict.length * 2, column };
}

test('malformed frames are refused with what is wrong', () => {
  const samples = synthetic(10).map((s) => ({ ...s, action: 'pass' as const, nw_ace_uuid: null }));
  const batch = encodeBatch(samples);
  const good = encodeFrame(1, batch);
  const at = layout(10, batch.dict);
  const edit = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = good.slice();
    f(b, new DataView(b.buffer));
    return b;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /shorter than the header/],
    ['not ours', edit((b) => (b[0] = 0x7b)), /magic/],
    ['a later version', edit((b) => (b[2] = FRAME_VERSION + 1)), /version 2 not supported/],
    ['an unknown kind', edit((b) => (b[3] = 9)), /unknown kind 9/],
    ['no rows', edit((_b, v) => v.setUint32(4, 0, true)), /count 0 is not 1-/],
    ['too many rows', edit((_b, v) => v.setUint32(4, MAX_BATCH + 1, true)), /count \d+ is not 1-/],
    ['more rows than the columns carry', edit((_b, v) => v.setUint32(4, 11, true)), /bytes, \d+ expected/],
    ['first 0', edit((_b, v) => v.setFloat64(8, 0, true)), /first must be a sequence number/],
    ['first not an integer', edit((_b, v) => v.setFloat64(8, 1.5, true)), /first must be a sequence number/],
    ['truncated', good.subarray(0, good.length - 8), /bytes, \d+ expected/],
    ['trailing bytes', new Uint8Array([...good, 0, 0, 0, 0, 0, 0, 0, 0]), /bytes, \d+ expected/],
    ['a huge dict', edit((_b, v) => v.setUint32(16, 0xffffffff, true)), /dict of \d+ entries/],
    ['dict lengths past the dict', edit((_b, v) => v.setUint16(24, 60_000, true)), /overrun the dict/],
    ['dict lengths short of the dict', edit((_b, v) => v.setUint16(24, v.getUint16(24, true) - 1, true)), /do not fill the dict/],
    ['a dict entry not UTF-8', edit((b) => (b[at.dictStart] = 0xff)), /dict entry 0 is not UTF-8/],
    ['a string code outside the dict', edit((_b, v) => v.setUint32(at.column['sourcevn']! + 4 * 3, batch.dict.length, true)), /column sourcevn row 3: not a dict index/],
    ['a negative time', edit((_b, v) => v.setBigInt64(at.column['t']! + 8 * 2, -1n, true)), /column t row 2: not an integer 0-2\^53/],
    ['a counter past 2^53', edit((_b, v) => v.setBigInt64(at.column['bytes']!, 2n ** 53n, true)), /column bytes row 0: not an integer/],
  ];
  for (const [name, frame, why] of cases) assert.throws(() => decodeFrame(frame, MAX_BATCH), (e: Error) => e instanceof FrameError && why.test(e.message), name);
  // A code outside the dict in a null row carries nothing: it is not looked at.
  const nullRow = edit((_b, v) => v.setUint32(at.column['nw_ace_uuid']!, 999, true));
  assert.equal(samplesOf(decodeFrame(nullRow, MAX_BATCH).batch)[0]!.nw_ace_uuid, null);
});
