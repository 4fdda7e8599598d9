// The binary batch frame of the flow channel (channel.ts): a batch's columns as they are in
// memory, so that neither end builds an object per sample nor parses text. Little-endian;
// every section starts at a multiple of 8 bytes, so the receiver reads the columns in place.
//
//   0  'C' 'F' version(1) kind(1: batch)
//   4  u32 count (rows)
//   8  f64 first (sequence number of row 0)
//  16  u32 dict entries, u32 dict bytes
//  24  u16 byte length of each dict entry, then the entries' UTF-8, padded to 8
//      then per column of COLUMNS, in order: nullable columns a validity bitmap of
//      ceil(count / 8) bytes padded to 8 (schema.ts ColumnData), then count values of the
//      column's width (schema.ts WIDTH) padded to 8.
//
// The receiver checks everything before anything is stored: the exact length, the header,
// the dictionary (valid UTF-8, at most 512 characters an entry), string codes inside it and
// times/counters within 0..2^53-1 (JS numbers stay exact); u8/u16/u32 are bounded by their width.

import { COLUMNS, type ColumnData, type FlowBatch, WIDTH, isPresent, newValues } from './schema.js';

export const FRAME_VERSION = 1;
const KIND_BATCH = 1;
const HEADER = 24;
const MAX_STRING = 512;

export class FrameError extends Error {}

const pad8 = (n: number) => (n + 7) & ~7;
const bitmapBytes = (count: number) => pad8((count + 7) >> 3);

/** The frame of a batch whose row 0 has sequence number `first`. */
export function encodeFrame(first: number, batch: FlowBatch): Uint8Array {
  const { count, dict, cols } = batch;
  const strings = dict.map((s) => Buffer.from(s, 'utf8'));
  const dictBytes = strings.reduce((n, b) => n + b.length, 0);
  let size = HEADER + pad8(dict.length * 2 + dictBytes);
  COLUMNS.forEach((c) => (size += (c.nullable ? bitmapBytes(count) : 0) + pad8(count * WIDTH[c.kind])));
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set([0x43, 0x46, FRAME_VERSION, KIND_BATCH]);
  view.setUint32(4, count, true);
  view.setFloat64(8, first, true);
  view.setUint32(16, dict.length, true);
  view.setUint32(20, dictBytes, true);
  let at = HEADER;
  for (const b of strings) {
    view.setUint16(at, b.length, true);
    at += 2;
  }
  for (const b of strings) {
    out.set(b, at);
    at += b.length;
  }
  at = pad8(at);
  COLUMNS.forEach((c, ci) => {
    const col = cols[ci]!;
    if (c.nullable) {
      out.set(col.valid!.subarray(0, (count + 7) >> 3), at);
      at += bitmapBytes(count);
    }
    out.set(new Uint8Array(col.values.buffer, col.values.byteOffset, count * WIDTH[c.kind]), at);
    at += pad8(count * WIDTH[c.kind]);
  });
  return out;
}

/** A batch frame from the wire; throws FrameError saying what is wrong. */
export function decodeFrame(data: Uint8Array, maxCount: number): { first: number; batch: FlowBatch } {
  if (data.length < HEADER) throw new FrameError(`frame: ${data.length} bytes is shorter than the header`);
  if (data[0] !== 0x43 || data[1] !== 0x46) throw new FrameError('frame: not a flow frame (magic)');
  if (data[2] !== FRAME_VERSION) throw new FrameError(`frame: version ${data[2]} not supported (${FRAME_VERSION})`);
  if (data[3] !== KIND_BATCH) throw new FrameError(`frame: unknown kind ${data[3]}`);
  // Columns are read in place: an unaligned buffer (ws may hand one out of a pool) is copied
  // once (into a new Uint8Array: a Buffer's slice() would be a view).
  const bytes = data.byteOffset % 8 === 0 ? data : new Uint8Array(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const count = view.getUint32(4, true);
  const first = view.getFloat64(8, true);
  const entries = view.getUint32(16, true);
  const dictBytes = view.getUint32(20, true);
  if (count < 1 || count > maxCount) throw new FrameError(`frame: count ${count} is not 1-${maxCount}`);
  if (!Number.isSafeInteger(first) || first < 1) throw new FrameError('frame: first must be a sequence number (1 or more)');
  const stringCols = COLUMNS.filter((c) => c.kind === 'string').length;
  if (entries > count * stringCols || dictBytes > entries * MAX_STRING * 4) throw new FrameError(`frame: dict of ${entries} entries, ${dictBytes} bytes is too large`);
  let size = HEADER + pad8(entries * 2 + dictBytes);
  COLUMNS.forEach((c) => (size += (c.nullable ? bitmapBytes(count) : 0) + pad8(count * WIDTH[c.kind])));
  if (bytes.length !== size) throw new FrameError(`frame: ${bytes.length} bytes, ${size} expected for ${count} rows and that dict`);

  const dict: string[] = new Array(entries);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let at = HEADER + entries * 2;
  for (let i = 0; i < entries; i++) {
    const len = view.getUint16(HEADER + 2 * i, true);
    if (at + len > HEADER + entries * 2 + dictBytes) throw new FrameError('frame: dict entries overrun the dict');
    let s: string;
    try {
      s = utf8.decode(bytes.subarray(at, at + len));
    } catch {
      throw new FrameError(`frame: dict entry ${i} is not UTF-8`);
    }
    if (s.length > MAX_STRING) throw new FrameError(`frame: dict entry ${i} is longer than ${MAX_STRING} characters`);
    dict[i] = s;
    at += len;
  }
  if (at !== HEADER + entries * 2 + dictBytes) throw new FrameError('frame: dict entries do not fill the dict');
  at = HEADER + pad8(entries * 2 + dictBytes);

  const cols: ColumnData[] = [];
  for (const c of COLUMNS) {
    let valid: Uint8Array | undefined;
    if (c.nullable) {
      valid = bytes.subarray(at, at + ((count + 7) >> 3));
      at += bitmapBytes(count);
    }
    const col: ColumnData = { values: newValues(c.kind, count, bytes.buffer as ArrayBuffer, bytes.byteOffset + at), ...(valid ? { valid } : {}) };
    at += pad8(count * WIDTH[c.kind]);
    const why = c.kind === 'string' ? badCode(col, count, entries) : c.kind === 'time' || c.kind === 'count' ? badInt64(col, count) : -1;
    if (why >= 0) throw new FrameError(`frame: column ${c.name} row ${why}: ${c.kind === 'string' ? 'not a dict index' : 'not an integer 0-2^53'}`);
    cols.push(col);
  }
  return { first, batch: { count, dict, cols } };
}

/** The first present row whose code is outside the dict, or -1. */
function badCode(col: ColumnData, count: number, entries: number): number {
  const v = col.values as Uint32Array;
  for (let i = 0; i < count; i++) if (v[i]! >= entries && isPresent(col, i)) return i;
  return -1;
}

/** The first present row whose int64 is negative or past 2^53 - 1 (high half over 0x1fffff), or -1. */
function badInt64(col: ColumnData, count: number): number {
  const halves = new Uint32Array(col.values.buffer, col.values.byteOffset, count * 2);
  for (let i = 0; i < count; i++) if (halves[2 * i + 1]! > 0x1fffff && isPresent(col, i)) return i;
  return -1;
}
