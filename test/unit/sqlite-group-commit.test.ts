// SqliteStore's group commit (one SQLite transaction for the commits of an event-loop
// turn), its failure path, and the migration of the first kv layout.

import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite.js';
import { tempDbFile, withStore } from '../support/store.js';
import type { Change } from '../../src/store/store.js';


const put = (key: string, value: string) => ({ compares: [], puts: [{ key, value }], deletes: [] });

/** What another connection (another process after a crash) finds on disk. */
function onDisk(file: string): Map<string, string> {
  const db = new Database(file, { readonly: true });
  try {
    return new Map(db.prepare<[], { key: string; value: string }>('SELECT key, value FROM kv').all().map((r) => [r.key, r.value]));
  } finally {
    db.close();
  }
}

test('commits of one turn share a transaction: announced at once, acknowledged when durable', () =>
  withStore(async (s, file) => {
    const seen: Change[][] = [];
    await s.watch(0, (c) => seen.push(c));
    const pending = [s.commit(put('a', '1')), s.commit(put('b', '2')), s.commit({ compares: [{ key: 'a', modRev: 0 }], puts: [{ key: 'c', value: '3' }], deletes: [] })];
    // Watchers (the config view) see each commit before the next one is checked...
    assert.deepEqual(seen.map((g) => g.map((c) => `${c.rev}:${c.key}`)), [['1:a'], ['2:b']]);
    // ...which is why the compare on 'a' already fails, within the same group.
    assert.ok(s.pendingCommits(), 'the group is open');
    assert.equal(onDisk(file).size, 0, 'nothing is durable before the group commits');
    assert.deepEqual(await Promise.all(pending), [{ ok: true, rev: 1 }, { ok: true, rev: 2 }, { ok: false, failedKey: 'a' }]);
    assert.equal(s.pendingCommits(), undefined);
    assert.deepEqual([...onDisk(file)], [['a', '1'], ['b', '2']], 'acknowledged means on disk');
  }));

test('reads commit the open group first, so they only see durable state', () =>
  withStore(async (s, file) => {
    const acked = s.commit(put('k', 'v'));
    assert.deepEqual(await s.get('k'), { key: 'k', value: 'v', createRev: 1, modRev: 1 });
    assert.equal(s.pendingCommits(), undefined, 'the read committed the group');
    assert.deepEqual(onDisk(file).get('k'), 'v');
    assert.deepEqual(await acked, { ok: true, rev: 1 });
    assert.equal(await s.revision(), 1);
  }));

test('a group that fails to commit is rolled back, and watchers are told the state on disk', () =>
  withStore(async (s, file) => {
    await s.commit(put('kept', 'old'));
    const seen: Change[][] = [];
    await s.watch(1, (c) => seen.push(c));
    // A deferred foreign key violation makes the COMMIT of the group fail.
    const db = (s as unknown as { db: Database.Database }).db;
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);');
    db.pragma('foreign_keys = ON');
    const updated = s.commit({ compares: [{ key: 'kept', modRev: 1 }], puts: [{ key: 'kept', value: 'new' }, { key: 'fresh', value: 'x' }], deletes: [] });
    db.prepare('INSERT INTO child (p) VALUES (42)').run();
    await assert.rejects(updated, /FOREIGN KEY/);
    assert.deepEqual(seen, [
      [{ rev: 2, key: 'kept', value: 'new' }, { rev: 2, key: 'fresh', value: 'x' }],
      [{ rev: 1, key: 'kept', value: 'old', createRev: 1 }, { rev: 2, key: 'fresh' }],
    ]);
    assert.deepEqual([...onDisk(file)], [['kept', 'old']]);
    // Revisions are not reused after the failure.
    db.pragma('foreign_keys = OFF');
    assert.deepEqual(await s.commit({ compares: [{ key: 'kept', modRev: 1 }], puts: [{ key: 'kept', value: 'newer' }], deletes: [] }), { ok: true, rev: 3 });
  }));

test('a store of the first layout (kv WITHOUT ROWID) is migrated in place', async () => {
  const { file, done } = tempDbFile();
  const old = new Database(file);
  old.pragma('journal_mode = WAL');
  old.exec(`
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE changes (rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (rev, seq)) WITHOUT ROWID;
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta VALUES ('rev', 3), ('compacted', 0);
    INSERT INTO kv VALUES ('b', '2', 2, 3), ('a', '1', 1, 1);
    INSERT INTO changes VALUES (1, 0, 'a', '1'), (2, 0, 'b', '0'), (3, 0, 'b', '2');`);
  old.close();
  const s = new SqliteStore(file);
  try {
    assert.equal(await s.revision(), 3);
    assert.deepEqual((await s.range('')).kvs, [
      { key: 'a', value: '1', createRev: 1, modRev: 1 },
      { key: 'b', value: '2', createRev: 2, modRev: 3 },
    ]);
    assert.deepEqual(await s.commit({ compares: [{ key: 'b', modRev: 3 }], puts: [{ key: 'b', value: '4' }], deletes: ['a'] }), { ok: true, rev: 4 });
    assert.deepEqual((await s.changesSince(2)).map((c) => `${c.rev}:${c.key}`), ['3:b', '4:b', '4:a']);
    await s.close();
    const reopened = new Database(file, { readonly: true });
    assert.doesNotMatch(reopened.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'kv'").get()!.sql, /WITHOUT ROWID/);
    reopened.close();
  } finally {
    await s.close();
    done();
  }
});
