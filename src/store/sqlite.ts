// Embedded store on SQLite in WAL mode. A commit is one SQLite transaction; with
// synchronous=NORMAL a commit is in the WAL file before it is acknowledged, so it survives
// the death of the process (kill -9); only a power loss can drop the last commits.

import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
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
}

interface KvRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,
  PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('rev', 0), ('compacted', 0);
`;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly watchers = new Set<WatchCallback>();
  private readonly historyRevisions: number;
  private rev: number;
  private compacted: number;
  private readonly stmts;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.historyRevisions = options.historyRevisions ?? 200_000;
    this.stmts = {
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
  }

  async revision(): Promise<number> {
    return this.rev;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const row = this.stmts.get.get(key);
    return row && toKeyValue(row);
  }

  async range(prefix: string): Promise<{ kvs: KeyValue[]; rev: number }> {
    const rows = this.stmts.range.all(prefix, prefix + '\uffff');
    return { kvs: rows.map(toKeyValue), rev: this.rev };
  }

  async commit(txn: Txn): Promise<CommitResult> {
    const result = this.commitSync(txn);
    if (result.ok) this.notify(result.rev, txn);
    return result;
  }

  private commitSync = (txn: Txn): CommitResult =>
    this.db.transaction((): CommitResult => {
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
      this.stmts.setMeta.run(rev, 'rev');
      if (rev - this.compacted > this.historyRevisions * 1.1) this.compactTo(rev - this.historyRevisions);
      this.rev = rev;
      return { ok: true, rev };
    })();

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
    for (let cursor = fromRev; cursor < this.rev; cursor += 10_000) {
      for (const group of groupByRev(this.readSince(cursor, 10_000))) callback(group);
    }
    this.watchers.add(callback);
    return () => this.watchers.delete(callback);
  }

  async close(): Promise<void> {
    this.watchers.clear();
    if (this.db.open) this.db.close();
  }
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
