import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite.js';
import { tempDbFile, withStore } from '../support/store.js';
import { type Change, CompactedError } from '../../src/store/store.js';


test('commit applies atomically only when every compare holds', () =>
  withStore(async (s) => {
    const r1 = await s.commit({ compares: [{ key: 'a', modRev: 0 }], puts: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }], deletes: [] });
    assert.deepEqual(r1, { ok: true, rev: 1 });
    const r2 = await s.commit({ compares: [{ key: 'a', modRev: 0 }], puts: [{ key: 'c', value: '3' }], deletes: [] });
    assert.deepEqual(r2, { ok: false, failedKey: 'a' });
    assert.equal(await s.get('c'), undefined, 'a failed transaction writes nothing');
    const r3 = await s.commit({ compares: [{ key: 'a', modRev: 1 }], puts: [{ key: 'a', value: '10' }], deletes: ['b'] });
    assert.deepEqual(r3, { ok: true, rev: 2 });
    assert.deepEqual(await s.get('a'), { key: 'a', value: '10', createRev: 1, modRev: 2 });
    assert.deepEqual((await s.range('')).kvs.map((k) => k.key), ['a']);
  }));

test('change feed: changesSince, watch replays history then streams, revision survives reopen', async () => {
  const { file, done } = tempDbFile();
  let s = new SqliteStore(file);
  try {
    await s.commit({ compares: [], puts: [{ key: 'x/1', value: 'a' }], deletes: [] });
    await s.commit({ compares: [], puts: [{ key: 'x/2', value: 'b' }], deletes: ['x/1'] });
    assert.deepEqual(await s.changesSince(1), [
      { rev: 2, key: 'x/2', value: 'b' },
      { rev: 2, key: 'x/1' },
    ]);
    const seen: Change[][] = [];
    const stop = await s.watch(0, (c) => seen.push(c));
    await s.commit({ compares: [], puts: [{ key: 'x/3', value: 'c' }], deletes: [] });
    stop();
    await s.commit({ compares: [], puts: [{ key: 'x/4', value: 'd' }], deletes: [] });
    assert.deepEqual(seen.map((g) => g.map((c) => `${c.rev}:${c.key}`)), [['1:x/1'], ['2:x/2', '2:x/1'], ['3:x/3']]);
    await s.close();
    s = new SqliteStore(file);
    assert.equal(await s.revision(), 4);
  } finally {
    await s.close();
    done();
  }
});

test('history beyond the retention is compacted and reported as such', () =>
  withStore(async (s) => {
    for (let i = 0; i < 30; i++) await s.commit({ compares: [], puts: [{ key: 'k', value: String(i) }], deletes: [] });
    await assert.rejects(s.changesSince(1), CompactedError);
    const recent = await s.changesSince(25);
    assert.deepEqual(recent.map((c) => c.rev), [26, 27, 28, 29, 30]);
  }, { historyRevisions: 10 }));
