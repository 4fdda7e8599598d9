// Embedded store on SQLite in WAL mode. With synchronous=NORMAL a commit is in the WAL
// file before it is acknowledged, so it survives the death of the process (kill -9); only
// a power loss can drop the last commits.
//
// Group commit: a commit is checked and written at once inside an open SQLite transaction
// and announced to watchers synchronously (the config view must see it before the next
// mutation is checked), but acknowledged only when that transaction commits, at the end of
// the event-loop turn, together with every other commit of the turn. One COMMIT (and one
// set of WAL pages) for many writes is what makes concurrent writers fast. Reads through
// this interface first commit the open group, so they only ever see durable state; the API
// holds its answers until the group they may have seen is durable (`pendingCommits`).
//
// Checkpoints (copying the WAL back into the database, with fsyncs) run on a second
// connection in a worker thread, so the event loop does not stall on them.

import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  type Change,
  type CommitResult,
  CompactedError,
  type KeyValue,
  type Store,
  type Txn,
  type WatchCallback,
} from './store.js';

export interface SqliteStoreOptions {
  /** Revisions of history kept for `changesSince`/`watch`; older ones are compacted. */
  historyRevisions?: number;
  /** Checkpoint the WAL from a worker thread (default: true for a file, false for ':memory:'). */
  backgroundCheckpoints?: boolean;
}

interface KvRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
}

// kv is a rowid table with a unique index on the key, not a WITHOUT ROWID table: values
// (objects of ~1 KB) stored in the key's b-tree made every insert of a random uuid dirty
// and split pages holding four rows, about 30% more WAL pages per commit than now, where
// rows are appended and the index holds only short keys.
const KV_TABLE = `
CREATE TABLE IF NOT EXISTS kv (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value TEXT NOT NULL,
  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
);`;

const SCHEMA = `${KV_TABLE}
CREATE TABLE IF NOT EXISTS changes (
  rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,
  PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('rev', 0), ('compacted', 0);
`;

/**
 * WAL size (pages) at which the writer checkpoints by itself. With the background
 * checkpointer this is a bound on the WAL (which only starts over once fully copied, and
 * under steady writes the worker is always a little behind): the worker has copied most of
 * it by then, so the writer's checkpoint is short (a few ms in the port benchmark, where
 * checkpoints on the event loop took 10-20 ms every few hundred commits).
 */
const WRITER_CHECKPOINT_PAGES = { background: 8192, alone: 1000 };

/** The open group: commits written to the open SQLite transaction, not yet durable. */
interface Group {
  /** Successful transactions, in order, as announced to watchers. */
  txns: Txn[];
  durable: Promise<void>;
  settle(error?: unknown): void;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly watchers = new Set<WatchCallback>();
  private readonly historyRevisions: number;
  /** Revision of the last announced commit; includes the open group. Never goes back. */
  private rev: number;
  private compacted: number;
  private group: Group | undefined;
  private readonly checkpointer: Checkpointer | undefined;
  private readonly stmts;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrateKv(this.db);
    this.db.exec(SCHEMA);
    this.historyRevisions = options.historyRevisions ?? 200_000;
    this.stmts = {
      begin: this.db.prepare('BEGIN IMMEDIATE'),
      commit: this.db.prepare('COMMIT'),
      rollback: this.db.prepare('ROLLBACK'),
      get: this.db.prepare<[string], KvRow>('SELECT key, value, create_rev, mod_rev FROM kv WHERE key = ?'),
      modRev: this.db.prepare<[string], { mod_rev: number }>('SELECT mod_rev FROM kv WHERE key = ?'),
      range: this.db.prepare<[string, string], KvRow>(
        'SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ? AND key < ? ORDER BY key',
      ),
      upsert: this.db.prepare(
        `INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev`,
      ),
      del: this.db.prepare('DELETE FROM kv WHERE key = ?'),
      logChange: this.db.prepare('INSERT INTO changes (rev, seq, key, value) VALUES (?, ?, ?, ?)'),
      setMeta: this.db.prepare('UPDATE meta SET value = ? WHERE name = ?'),
      getMeta: this.db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
      since: this.db.prepare<[number, number], { rev: number; key: string; value: string | null }>(
        'SELECT rev, key, value FROM changes WHERE rev > ? AND rev <= ? ORDER BY rev, seq',
      ),
      compact: this.db.prepare('DELETE FROM changes WHERE rev <= ?'),
    };
    this.rev = this.stmts.getMeta.get('rev')!.value;
    this.compacted = this.stmts.getMeta.get('compacted')!.value;
    this.checkpointer = (options.backgroundCheckpoints ?? file !== ':memory:') ? this.startCheckpointer(file) : undefined;
  }

  private startCheckpointer(file: string): Checkpointer {
    this.db.pragma(`wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES.background}`);
    const worker = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { file } });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // A failed checkpointer costs speed, not data: the writer goes back to checkpointing often.
    worker.on('error', () => {
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES.alone}`);
    });
    worker.unref();
    return { worker, exited };
  }

  async revision(): Promise<number> {
    this.flush();
    return this.rev;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.flush();
    const row = this.stmts.get.get(key);
    return row && toKeyValue(row);
  }

  async range(prefix: string): Promise<{ kvs: KeyValue[]; rev: number }> {
    this.flush();
    const rows = this.stmts.range.all(prefix, prefix + '\uffff');
    return { kvs: rows.map(toKeyValue), rev: this.rev };
  }

  async commit(txn: Txn): Promise<CommitResult> {
    const group = this.group ?? this.openGroup();
    let result: CommitResult;
    try {
      result = this.write(txn);
    } catch (e) {
      this.abort(group, e);
      throw e;
    }
    // A failed compare wrote nothing: no need to wait for the group.
    if (!result.ok) return result;
    group.txns.push(txn);
    this.notify(result.rev, txn);
    await group.durable;
    return result;
  }

  /**
   * The commit of the open group, if there is one: an answer computed from the config view
   * may show its writes, so it must not leave before this settles (rejected: rolled back).
   */
  pendingCommits(): Promise<void> | undefined {
    return this.group?.durable;
  }

  private openGroup(): Group {
    this.stmts.begin.run();
    let settle!: (error?: unknown) => void;
    const durable = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Each commit awaiting the group gets the rejection; a group may have none.
    durable.catch(() => {});
    const group: Group = { txns: [], durable, settle };
    this.group = group;
    // After the I/O callbacks of this turn: every request that arrived with this one joins.
    setImmediate(() => {
      if (this.group === group) this.flush();
    });
    return group;
  }

  /** Checks the compares and writes the transaction into the open SQLite transaction. */
  private write(txn: Txn): CommitResult {
    for (const c of txn.compares) {
      const current = this.stmts.modRev.get(c.key)?.mod_rev ?? 0;
      if (current !== c.modRev) return { ok: false, failedKey: c.key };
    }
    const rev = this.rev + 1;
    let seq = 0;
    for (const p of txn.puts) {
      this.stmts.upsert.run(p.key, p.value, rev, rev);
      this.stmts.logChange.run(rev, seq++, p.key, p.value);
    }
    for (const key of txn.deletes) {
      if (this.stmts.del.run(key).changes > 0) this.stmts.logChange.run(rev, seq++, key, null);
    }
    if (rev - this.compacted > this.historyRevisions * 1.1) this.compactTo(rev - this.historyRevisions);
    this.rev = rev;
    return { ok: true, rev };
  }

  /** Makes the open group durable: one COMMIT for all its transactions. */
  private flush(): void {
    const group = this.group;
    if (!group) return;
    try {
      if (group.txns.length) this.stmts.setMeta.run(this.rev, 'rev');
      this.stmts.commit.run();
    } catch (e) {
      this.abort(group, e);
      return;
    }
    this.group = undefined;
    group.settle();
  }

  /**
   * A group that cannot be committed (disk full, I/O error): it is rolled back, watchers
   * are told the state of every key it touched as it is on disk again, and every commit
   * waiting on it fails. Its revisions are not reused: revisions only ever grow.
   */
  private abort(group: Group, error: unknown): void {
    this.group = undefined;
    try {
      if (this.db.inTransaction) this.stmts.rollback.run();
    } finally {
      this.compacted = this.stmts.getMeta.get('compacted')!.value;
      const keys = new Set<string>();
      for (const t of group.txns) {
        for (const p of t.puts) keys.add(p.key);
        for (const k of t.deletes) keys.add(k);
      }
      if (keys.size && this.watchers.size) {
        const restored: Change[] = [...keys].map((key) => {
          const row = this.stmts.get.get(key);
          return row ? { rev: row.mod_rev, key, value: row.value, createRev: row.create_rev } : { rev: this.rev, key };
        });
        for (const w of this.watchers) w(restored);
      }
      group.settle(error);
    }
  }

  private compactTo(rev: number): void {
    this.stmts.compact.run(rev);
    this.stmts.setMeta.run(rev, 'compacted');
    this.compacted = rev;
  }

  private notify(rev: number, txn: Txn): void {
    if (this.watchers.size === 0) return;
    const changes: Change[] = [
      ...txn.puts.map((p) => ({ rev, key: p.key, value: p.value })),
      ...txn.deletes.map((key) => ({ rev, key })),
    ];
    for (const w of this.watchers) w(changes);
  }

  async changesSince(rev: number, revisions = 1_000): Promise<Change[]> {
    this.flush();
    return this.readSince(rev, revisions);
  }

  private readSince(rev: number, revisions: number): Change[] {
    if (rev < this.compacted) throw new CompactedError(rev, this.compacted + 1);
    return this.stmts.since
      .all(rev, rev + revisions)
      .map((r) => (r.value === null ? { rev: r.rev, key: r.key } : { rev: r.rev, key: r.key, value: r.value }));
  }

  async watch(fromRev: number, callback: WatchCallback): Promise<() => void> {
    // History is read synchronously up to the current revision, then live delivery takes
    // over: nothing can commit in between because this runs without yielding.
    this.flush();
    for (let cursor = fromRev; cursor < this.rev; cursor += 10_000) {
      for (const group of groupByRev(this.readSince(cursor, 10_000))) callback(group);
    }
    this.watchers.add(callback);
    return () => this.watchers.delete(callback);
  }

  async close(): Promise<void> {
    if (this.db.open) this.flush();
    this.watchers.clear();
    if (this.checkpointer) await stopCheckpointer(this.checkpointer);
    if (this.db.open) this.db.close();
  }
}

/** Rewrites a kv table of the first layout (WITHOUT ROWID) into the current one, atomically. */
function migrateKv(db: Database.Database): void {
  const table = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get();
  if (!table || !/WITHOUT\s+ROWID/i.test(table.sql)) return;
  db.transaction(() => {
    db.exec('ALTER TABLE kv RENAME TO kv_without_rowid');
    db.exec(KV_TABLE);
    // In creation order, which is also the order the view loads them in.
    db.exec('INSERT INTO kv (key, value, create_rev, mod_rev) SELECT key, value, create_rev, mod_rev FROM kv_without_rowid ORDER BY create_rev, key');
    db.exec('DROP TABLE kv_without_rowid');
  }).immediate();
}

interface Checkpointer {
  worker: Worker;
  exited: Promise<void>;
}

/** Asks the checkpointer to close its connection and waits for the thread to end. */
async function stopCheckpointer({ worker, exited }: Checkpointer): Promise<void> {
  // Unreferenced, the thread would not keep the loop alive while we wait for it.
  worker.ref();
  worker.postMessage('stop');
  await exited;
}

function toKeyValue(row: KvRow): KeyValue {
  return { key: row.key, value: row.value, createRev: row.create_rev, modRev: row.mod_rev };
}

function groupByRev(changes: Change[]): Change[][] {
  const groups: Change[][] = [];
  for (const c of changes) {
    const last = groups[groups.length - 1];
    if (last && last[0]!.rev === c.rev) last.push(c);
    else groups.push([c]);
  }
  return groups;
}
