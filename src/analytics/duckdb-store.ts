// The embedded flow store: DuckDB. New samples are appended (the wire's typed columns copied
// into 2048-row chunks as they are, one transaction per group of batches, with each sender's
// sequence number in the same transaction: a resend after a crash is recognised) into a
// staging table in DATA/staging.duckdb. Its string columns hold codes into the `strings`
// table (the store's own dictionary, grown in the same transactions: network names, hosts and
// rule uuids are few), because DuckDB takes integers from JS far faster than strings; the
// relation queries and window moves read decodes them. Each 10-minute window of sample time, once closed (or once it holds a
// million samples), is moved into one ZSTD Parquet file, DATA/windows/<start ms>-<n>-<rows>.parquet:
// ~30 bytes a sample, read column by column with the windows outside a query's range never
// opened; retention deletes whole files, so space comes back at once. Queries see the
// files of their range and the staging table as one relation.
//
// A move is two-phase so that a crash never loses or doubles a window: the file is written
// as .tmp, then its rows leave staging in the same transaction that records its name in
// `moved`, then it is renamed; at open, a recorded .tmp is renamed and an unrecorded one
// deleted.

import duckdb from '@duckdb/node-bindings';
import fs from 'node:fs';
import path from 'node:path';
import {
  BIGINT,
  DuckDBAppender,
  DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBPreparedStatement,
  type DuckDBType,
  UINTEGER,
  USMALLINT,
  UTINYINT,
} from '@duckdb/node-api';
import { COLUMNS, type Column, type ColumnData, type FlowBatch } from './schema.js';
import type { FlowStore, Retention, Statement, StoreStats } from './store.js';

export const WINDOW_MS = 10 * 60_000;
/** A closed window is moved this long after its end (late samples still land in it). */
const GRACE_MS = 60_000;
/** A window holding this many staged samples is moved in part already. */
const PART_ROWS = 1_000_000;
const CHUNK_ROWS = 2048;
/** Small groups are committed at most this often. */
const GROUP_MS = 100;
const MAINTAIN_EVERY_MS = 15_000;

/** Staged types; strings are codes into `strings`. */
const SQL_TYPE: Record<Column['kind'], string> = { string: 'UINTEGER', ip: 'UINTEGER', u8: 'UTINYINT', u16: 'USMALLINT', u32: 'UINTEGER', time: 'BIGINT', count: 'BIGINT' };
const DUCK_TYPE: Record<Column['kind'], DuckDBType> = { string: UINTEGER, ip: UINTEGER, u8: UTINYINT, u16: USMALLINT, u32: UINTEGER, time: BIGINT, count: BIGINT };
const COLUMN_LIST = COLUMNS.map((c) => c.name).join(', ');
const STAGING_DDL = COLUMNS.map((c) => `${c.name} ${SQL_TYPE[c.kind]}`).join(', ');
/** The staging table with its strings decoded: what queries and window moves read. */
const STAGED = `SELECT ${COLUMNS.map((c) => (c.kind === 'string' ? `_dict.d[${c.name} + 1] AS ${c.name}` : c.name)).join(', ')} FROM staging, (SELECT list(s ORDER BY code) AS d FROM strings) AS _dict`;

interface WindowFile {
  name: string;
  /** Window start, ms. */
  start: number;
  rows: number;
  bytes: number;
}

interface PendingAppend {
  source: string;
  first: number;
  batch: FlowBatch;
  resolve: (held: number) => void;
  reject: (e: Error) => void;
}

export interface DuckStoreOptions {
  dir: string;
  retention: Retention;
  /** Moves and retention run on a timer (off for tests that drive `maintain` themselves). */
  autoMaintain?: boolean;
}

export class DuckFlowStore implements FlowStore {
  private files: WindowFile[] = [];
  private readonly held = new Map<string, number>();
  private pending: PendingAppend[] = [];
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private staged = 0;
  /** Staged samples after the last maintenance (see maintainIfGrown). */
  private stagedAtMaintain = 0;
  private exclusiveWaiting = 0;
  /** The `strings` table: string → code (codes are 0, 1, 2... in order of arrival). */
  private readonly codes = new Map<string, number>();
  private readonly expired = { age: 0, size: 0 };
  private closed = false;
  private lastCommit = -Infinity;
  private commits = 0;
  private groupTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly opts: DuckStoreOptions,
    private readonly db: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    private readonly appender: DuckDBAppender,
    /** A sender's sequence number: prepared, and an UPDATE for a known sender (INSERT OR REPLACE cost ~3 ms a commit). */
    private readonly sourceUpdate: DuckDBPreparedStatement,
    private readonly sourceInsert: DuckDBPreparedStatement,
  ) {}

  static async open(opts: DuckStoreOptions): Promise<DuckFlowStore> {
    fs.mkdirSync(path.join(opts.dir, 'windows'), { recursive: true });
    const db = await DuckDBInstance.create(path.join(opts.dir, 'staging.duckdb'));
    const writer = await db.connect();
    await writer.run(`CREATE TABLE IF NOT EXISTS staging (${STAGING_DDL})`);
    await writer.run('CREATE TABLE IF NOT EXISTS strings (code UINTEGER PRIMARY KEY, s VARCHAR UNIQUE)');
    await migrateVarcharStaging(writer);
    await writer.run('CREATE TABLE IF NOT EXISTS sources (source VARCHAR PRIMARY KEY, seq BIGINT, seen BIGINT)');
    await writer.run('CREATE TABLE IF NOT EXISTS moved (file VARCHAR)');
    const appender = await writer.createAppender('staging');
    const sourceUpdate = await writer.prepare('UPDATE sources SET seq = $2, seen = $3 WHERE source = $1');
    const sourceInsert = await writer.prepare('INSERT INTO sources VALUES ($1, $2, $3)');
    const store = new DuckFlowStore(opts, db, writer, appender, sourceUpdate, sourceInsert);
    await store.recover();
    if (opts.autoMaintain !== false) {
      store.timer = setInterval(() => void store.maintain().catch((e: Error) => console.error(`cirrus collector: store maintenance: ${e.message}`)), MAINTAIN_EVERY_MS);
      store.timer.unref();
    }
    return store;
  }

  private windowsDir = (): string => path.join(this.opts.dir, 'windows');

  /** Finishes interrupted moves and lists the windows. */
  private async recover(): Promise<void> {
    const moved = new Set((await this.rows(this.writer, 'SELECT file FROM moved')).map((r) => String(r['file'])));
    for (const f of fs.readdirSync(this.windowsDir())) {
      if (!f.endsWith('.tmp')) continue;
      const final = f.slice(0, -'.tmp'.length);
      if (moved.has(final)) fs.renameSync(path.join(this.windowsDir(), f), path.join(this.windowsDir(), final));
      else fs.rmSync(path.join(this.windowsDir(), f));
    }
    await this.writer.run('DELETE FROM moved');
    this.files = fs
      .readdirSync(this.windowsDir())
      .map((name) => parseFileName(name, this.windowsDir()))
      .filter((f): f is WindowFile => f !== undefined)
      .sort((a, b) => a.start - b.start || a.name.localeCompare(b.name));
    for (const r of await this.rows(this.writer, 'SELECT source, seq FROM sources')) this.held.set(String(r['source']), Number(r['seq']));
    for (const r of await this.rows(this.writer, 'SELECT code, s FROM strings')) this.codes.set(String(r['s']), Number(r['code']));
    this.staged = Number((await this.rows(this.writer, 'SELECT count(*) AS n FROM staging'))[0]!['n']);
  }

  private async rows(conn: DuckDBConnection, sql: string, params?: (string | number)[]): Promise<Record<string, unknown>[]> {
    const reader = await conn.runAndReadAll(sql, params);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  }

  // ---- writing -------------------------------------------------------------------------

  append(source: string, first: number, batch: FlowBatch): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the flow store is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ source, first, batch, resolve, reject });
      this.kick();
    });
  }

  async committed(source: string): Promise<number> {
    return this.held.get(source) ?? 0;
  }

  /**
   * One writer at a time: appends waiting meanwhile go together in the next transaction. A
   * maintenance waiting for its turn goes before the next group (under a steady stream it
   * would otherwise wait for ever while staging grows).
   */
  private kick(): void {
    if (this.writing || this.exclusiveWaiting) return;
    // A small group waits for company: a commit costs ~5 ms whatever its size, and many
    // senders each sending once a second would otherwise mean as many commits.
    const wait = this.lastCommit + GROUP_MS - performance.now();
    if (wait > 0 && !this.closed && this.pendingRows() < CHUNK_ROWS) {
      this.groupTimer ??= setTimeout(() => {
        this.groupTimer = undefined;
        this.kick();
      }, wait);
      return;
    }
    clearTimeout(this.groupTimer);
    this.groupTimer = undefined;
    this.writing = (async () => {
      while (this.pending.length && !this.exclusiveWaiting) {
        const group = this.pending;
        this.pending = [];
        try {
          await this.commitGroup(group);
        } catch (e) {
          for (const p of group) p.reject(e as Error);
        }
        this.lastCommit = performance.now();
        this.maintainIfGrown();
        if (this.pendingRows() < CHUNK_ROWS) break;
      }
    })().finally(() => {
      this.writing = undefined;
      if (this.pending.length) this.kick();
    });
  }

  private pendingRows(): number {
    return this.pending.reduce((n, p) => n + p.batch.count, 0);
  }

  private async commitGroup(group: PendingAppend[]): Promise<void> {
    const after = new Map<string, number>();
    const heldOf = (s: string) => after.get(s) ?? this.held.get(s) ?? 0;
    // Strings first seen in this group: in `strings` only if the transaction commits.
    const fresh = new Map<string, number>();
    const codeOf = (s: string) => {
      let code = this.codes.get(s) ?? fresh.get(s);
      if (code === undefined) fresh.set(s, (code = this.codes.size + fresh.size));
      return code;
    };
    let rows = 0;
    await this.writer.run('BEGIN TRANSACTION');
    try {
      for (const p of group) {
        const held = heldOf(p.source);
        const skip = Math.max(0, held - p.first + 1);
        if (skip >= p.batch.count) continue;
        this.appendRows(p.batch, skip, Uint32Array.from(p.batch.dict, codeOf));
        rows += p.batch.count - skip;
        after.set(p.source, p.first + p.batch.count - 1);
      }
      this.appender.flushSync();
      for (const [str, code] of fresh) await this.writer.run('INSERT INTO strings VALUES ($1, $2)', [code, str]);
      const now = Date.now();
      for (const [source, seq] of after) {
        const statement = this.held.has(source) ? this.sourceUpdate : this.sourceInsert;
        statement.bind([source, seq, now]);
        await statement.run();
      }
      await this.writer.run('COMMIT');
    } catch (e) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
    for (const [str, code] of fresh) this.codes.set(str, code);
    for (const [s, seq] of after) this.held.set(s, seq);
    this.staged += rows;
    this.commits++;
    for (const p of group) p.resolve(heldOf(p.source));
  }

  /** Rows `from`.. of a batch into staging, its dict codes mapped through `codes` to the store's. */
  private appendRows(batch: FlowBatch, from: number, codes: Uint32Array): void {
    const types = COLUMNS.map((c) => DUCK_TYPE[c.kind]);
    for (let start = from; start < batch.count; start += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, batch.count - start);
      const chunk = DuckDBDataChunk.create(types, n);
      COLUMNS.forEach((c, ci) => {
        const vector = duckdb.data_chunk_get_vector(chunk.chunk, ci);
        const col = batch.cols[ci]!;
        let values = col.values.subarray(start, start + n);
        if (c.kind === 'string') {
          const mapped = new Uint32Array(n);
          for (let i = 0; i < n; i++) mapped[i] = codes[values[i] as number] ?? 0;
          values = mapped;
        }
        duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
        if (col.valid) {
          const bits = validityFrom(col, start, n);
          duckdb.vector_ensure_validity_writable(vector);
          duckdb.copy_data_to_vector_validity(vector, 0, bits.buffer as ArrayBuffer, bits.byteOffset, bits.byteLength);
        }
      });
      this.appender.appendDataChunk(chunk);
    }
  }

  /** Runs `fn` between group commits (moves and retention change staging too). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusiveWaiting++;
    try {
      while (this.writing) await this.writing;
    } finally {
      this.exclusiveWaiting--;
    }
    let release!: () => void;
    this.writing = new Promise<void>((r) => (release = r));
    try {
      return await fn();
    } finally {
      this.writing = undefined;
      release();
      if (this.pending.length) this.kick();
    }
  }

  // ---- moving windows out, retention ---------------------------------------------------

  /**
   * Fast ingest fills staging between the timer's runs (and a DuckDB file never shrinks):
   * every PART_ROWS new staged samples, a maintenance is queued behind the writer.
   */
  private maintainIfGrown(): void {
    if (this.opts.autoMaintain === false || this.staged < this.stagedAtMaintain + PART_ROWS) return;
    this.stagedAtMaintain = this.staged;
    void this.maintain().catch((e: Error) => console.error(`cirrus collector: store maintenance: ${e.message}`));
  }

  async maintain(now = Date.now()): Promise<void> {
    await this.exclusive(async () => {
      await this.moveDue(now);
      await this.applyRetention(now);
      this.stagedAtMaintain = this.staged;
    });
  }

  private async moveDue(now: number): Promise<void> {
    const windows = await this.rows(this.writer, `SELECT t // ${WINDOW_MS * 1000} AS w, count(*) AS n FROM staging GROUP BY w ORDER BY w`);
    for (const r of windows) {
      const start = Number(r['w']) * WINDOW_MS;
      const n = Number(r['n']);
      if (start + WINDOW_MS + GRACE_MS > now && n < PART_ROWS) continue;
      await this.moveWindow(start);
    }
  }

  private async moveWindow(start: number): Promise<void> {
    const range = `t >= ${start * 1000} AND t < ${(start + WINDOW_MS) * 1000}`;
    const n = Number((await this.rows(this.writer, `SELECT count(*) AS n FROM staging WHERE ${range}`))[0]!['n']);
    if (!n) return;
    const part = this.files.filter((f) => f.start === start).length;
    const name = `${start}-${part}-${n}.parquet`;
    const final = path.join(this.windowsDir(), name);
    const tmp = `${final}.tmp`;
    // Sorted by where the sample comes from, then time: neighbouring rows repeat their strings and addresses.
    await this.writer.run(`COPY (SELECT ${COLUMN_LIST} FROM (${STAGED}) WHERE ${range} ORDER BY vrouter, sourcevn, sourceip, t) TO '${tmp}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`);
    await this.writer.run('BEGIN TRANSACTION');
    try {
      await this.writer.run(`DELETE FROM staging WHERE ${range}`);
      await this.writer.run('INSERT INTO moved VALUES ($1)', [name]);
      await this.writer.run('COMMIT');
    } catch (e) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.renameSync(tmp, final);
    await this.writer.run('DELETE FROM moved WHERE file = $1', [name]);
    this.staged -= n;
    this.files.push({ name, start, rows: n, bytes: fs.statSync(final).size });
    this.files.sort((a, b) => a.start - b.start || a.name.localeCompare(b.name));
  }

  private async applyRetention(now: number): Promise<void> {
    const cutoff = now - this.opts.retention.maxAgeMs;
    while (this.files.length && this.files[0]!.start + WINDOW_MS <= cutoff) this.expired.age += this.dropOldestFile();
    const old = Number((await this.rows(this.writer, `SELECT count(*) AS n FROM staging WHERE t < ${cutoff * 1000}`))[0]!['n']);
    if (old) {
      await this.writer.run(`DELETE FROM staging WHERE t < ${cutoff * 1000}`);
      this.staged -= old;
      this.expired.age += old;
    }
    await this.writer.run('DELETE FROM sources WHERE seen < $1', [cutoff]);
    for (const [s] of this.held) if (!(await this.rows(this.writer, 'SELECT 1 FROM sources WHERE source = $1', [s])).length) this.held.delete(s);
    while (this.files.length && this.diskBytes() > this.opts.retention.maxBytes) this.expired.size += this.dropOldestFile();
  }

  private dropOldestFile(): number {
    const f = this.files.shift()!;
    fs.rmSync(path.join(this.windowsDir(), f.name), { force: true });
    return f.rows;
  }

  private diskBytes(): number {
    let staging = 0;
    for (const f of ['staging.duckdb', 'staging.duckdb.wal']) {
      try {
        staging += fs.statSync(path.join(this.opts.dir, f)).size;
      } catch {
        // no WAL right now
      }
    }
    return staging + this.files.reduce((s, f) => s + f.bytes, 0);
  }

  // ---- reading -------------------------------------------------------------------------

  async select(startUs: number, endUs: number, build: (relation: string) => Statement): Promise<Record<string, unknown>[]> {
    const files = this.files.filter((f) => f.start * 1000 <= endUs && (f.start + WINDOW_MS) * 1000 > startUs).map((f) => `'${path.join(this.windowsDir(), f.name)}'`);
    const relation = `(${files.length ? `SELECT ${COLUMN_LIST} FROM read_parquet([${files.join(', ')}]) UNION ALL ` : ''}${STAGED})`;
    const stmt = build(relation);
    const conn = await this.db.connect();
    try {
      return await this.rows(conn, stmt.sql, stmt.params);
    } finally {
      conn.closeSync();
    }
  }

  async stats(): Promise<StoreStats> {
    return {
      records: this.staged + this.files.reduce((s, f) => s + f.rows, 0),
      bytes: this.diskBytes(),
      files: this.files.length,
      staged: this.staged,
      commits: this.commits,
      expired: { ...this.expired },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.kick(); // what waits for company goes now
    while (this.writing) await this.writing;
    this.appender.closeSync();
    this.writer.closeSync();
    this.db.closeSync();
  }
}

function parseFileName(name: string, dir: string): WindowFile | undefined {
  const m = /^(\d+)-(\d+)-(\d+)\.parquet$/.exec(name);
  if (!m) return undefined;
  return { name, start: Number(m[1]), rows: Number(m[3]), bytes: fs.statSync(path.join(dir, name)).size };
}

/** The validity bits of rows start..start+n of a column, from bit 0 (a copy only when start is not a whole byte). */
function validityFrom(col: ColumnData, start: number, n: number): Uint8Array {
  const valid = col.valid!;
  if (start % 8 === 0) return valid.subarray(start >> 3, (start + n + 7) >> 3);
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) {
    const j = start + i;
    if (valid[j >> 3]! & (1 << (j & 7))) out[i >> 3]! |= 1 << (i & 7);
  }
  return out;
}

/**
 * Stores written before string codes (staging with VARCHAR columns) are converted at open:
 * their strings become the first codes, in one transaction.
 */
async function migrateVarcharStaging(conn: DuckDBConnection): Promise<void> {
  const r = await conn.runAndReadAll("SELECT data_type FROM information_schema.columns WHERE table_name = 'staging' AND column_name = 'vrouter'");
  if (r.getRowObjectsJS()[0]?.['data_type'] !== 'VARCHAR') return;
  const strings = COLUMNS.filter((c) => c.kind === 'string').map((c) => c.name);
  await conn.run('BEGIN TRANSACTION');
  try {
    await conn.run(`INSERT INTO strings SELECT (row_number() OVER (ORDER BY s)) - 1, s FROM (SELECT DISTINCT unnest([${strings.join(', ')}]) AS s FROM staging) WHERE s IS NOT NULL`);
    await conn.run(`CREATE TABLE staging_codes (${STAGING_DDL})`);
    const select = COLUMNS.map((c) => (c.kind === 'string' ? `(SELECT code FROM strings WHERE strings.s = staging.${c.name})` : c.name)).join(', ');
    await conn.run(`INSERT INTO staging_codes SELECT ${select} FROM staging`);
    await conn.run('DROP TABLE staging');
    await conn.run('ALTER TABLE staging_codes RENAME TO staging');
    await conn.run('COMMIT');
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
