// The DuckDB flow store: a resend is stored once, closed windows move to Parquet and
// survive a reopen, a move interrupted by a crash is finished or undone, and retention
// by age and by size deletes the oldest data; a store from before string codes (VARCHAR
// staging) is migrated at open; small batches arriving one after another share commits.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckFlowStore, WINDOW_MS } from '../../src/analytics/duckdb-store.js';
import { COLUMNS, encodeBatch } from '../../src/analytics/schema.js';
import { syntheticFlows } from '../support/flows.js';
import { tempDataDir } from '../support/server.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const NOW = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
const open = (dir: string, maxBytes = 1e12, maxAgeMs = 86_400_000) => DuckFlowStore.open({ dir, retention: { maxAgeMs, maxBytes }, autoMaintain: false });
const count = async (store: DuckFlowStore) => Number((await store.select(0, Number.MAX_SAFE_INTEGER, (rel) => ({ sql: `SELECT count(*) AS n FROM ${rel}`, params: [] })))[0]!['n']);

/** Samples over `windows` whole windows ending at NOW. */
const samples = (n: number, windows: number, seed = 1) => syntheticFlows({ seed, startMs: NOW - windows * WINDOW_MS, endMs: NOW - 1 })(n);

test('a resent batch, whole or overlapping, is stored once; the sequence survives a reopen', async () => {
  const dir = tempDataDir();
  dirs.push(dir);
  let store = await open(dir);
  const batch = encodeBatch(samples(1000, 1));
  assert.equal(await store.append('h1/0000000a', 1, batch), 1000);
  assert.equal(await store.append('h1/0000000a', 1, batch), 1000, 'the same batch again: nothing new');
  assert.equal(await store.append('h1/0000000a', 501, batch), 1500, 'half of it new');
  assert.equal(await store.append('h2/0000000b', 1, batch), 1000, 'another source has its own numbers');
  assert.equal(await count(store), 2500);
  await store.close();
  store = await open(dir);
  assert.equal(await store.committed('h1/0000000a'), 1500);
  assert.equal(await store.append('h1/0000000a', 1001, batch), 2000);
  assert.equal(await count(store), 3000);
  await store.close();
});

test('small batches arriving every few ms share commits (at most one per 100 ms); a close stores what still waits', async () => {
  const dir = tempDataDir();
  dirs.push(dir);
  const store = await open(dir);
  const gen = syntheticFlows({ seed: 3, startMs: NOW - WINDOW_MS, endMs: NOW - 1 });
  const acks: Promise<number>[] = [];
  const started = performance.now();
  // 40 batches of 10 from 4 senders, 10 ms apart: 400 ms, ~40 commits if each went alone.
  for (let i = 0; i < 40; i++) {
    acks.push(store.append(`h${i % 4}/0000000c`, 1 + Math.floor(i / 4) * 10, encodeBatch(gen(10))));
    await new Promise((r) => setTimeout(r, 10));
  }
  const last = store.append('h0/0000000c', 101, encodeBatch(gen(10)));
  await store.close();
  // Each sender's last batch held (h0's may already count the one appended just before close, in the same group).
  for (const held of await Promise.all(acks.slice(-4))) assert.ok(held >= 100, `held ${held}`);
  assert.equal(await last, 110, 'appended just before close: stored, not dropped');
  const { commits } = await store.stats();
  const limit = Math.ceil((performance.now() - started) / 100) + 2;
  assert.ok(commits <= limit, `${commits} commits for 41 batches in ${Math.round(performance.now() - started)} ms (at most ${limit})`);
  const reopened = await open(dir);
  assert.equal(await count(reopened), 410);
  await reopened.close();
});

test('closed windows move to Parquet files; an interrupted move is finished or undone at open', async () => {
  const dir = tempDataDir();
  dirs.push(dir);
  let store = await open(dir);
  await store.append('h1/0000000a', 1, encodeBatch(samples(3000, 3)));
  await store.maintain(NOW + 61_000);
  let s = await store.stats();
  assert.deepEqual([s.files, s.staged, s.records], [3, 0, 3000]);
  await store.close();
  // A crash between writing a file and recording the move leaves a .tmp nobody recorded: it goes.
  const windows = path.join(dir, 'windows');
  fs.writeFileSync(path.join(windows, `${NOW}-0-5.parquet.tmp`), 'half a file');
  store = await open(dir);
  s = await store.stats();
  assert.deepEqual([s.files, s.records], [3, 3000]);
  assert.ok(!fs.readdirSync(windows).some((f) => f.endsWith('.tmp')));
  assert.equal(await count(store), 3000, 'queries read the files');
  await store.close();
});

test('retention: by age the windows and staged samples past it go; by size the oldest windows', async () => {
  const dir = tempDataDir();
  dirs.push(dir);
  const store = await open(dir, 1e12, 3 * WINDOW_MS);
  await store.append('h1/0000000a', 1, encodeBatch(samples(6000, 6)));
  await store.maintain(NOW + 61_000);
  let s = await store.stats();
  // Windows that ended more than 3 windows before NOW + 61 s: the 3 oldest.
  assert.deepEqual([s.files, s.records, s.expired.age], [3, 6000 - s.expired.age, s.expired.age]);
  assert.ok(s.expired.age > 2000 && s.expired.age < 4000, `about half expired by age (${s.expired.age})`);
  const oldest = Math.min(...fs.readdirSync(path.join(dir, 'windows')).map((f) => Number(f.split('-')[0])));
  assert.equal(oldest, NOW - 3 * WINDOW_MS);
  await store.close();

  const dir2 = tempDataDir();
  dirs.push(dir2);
  const big = await open(dir2);
  await big.append('h1/0000000a', 1, encodeBatch(samples(6000, 6)));
  await big.maintain(NOW + 61_000);
  await big.close();
  // Measured as the next open will find it (closing checkpoints the staging database).
  const again = await open(dir2);
  const full = await again.stats();
  await again.close();
  // Room for the staging database and about two windows.
  const windows = fs.readdirSync(path.join(dir2, 'windows')).map((f) => fs.statSync(path.join(dir2, 'windows', f)).size);
  const perFile = windows.reduce((a, b) => a + b, 0) / windows.length;
  const small = await open(dir2, full.bytes - 3.5 * perFile);
  await small.maintain(NOW + 61_000);
  s = await small.stats();
  assert.ok(s.bytes <= full.bytes - 3.5 * perFile, 'within the size');
  assert.equal(s.files, 2, 'the four oldest windows went');
  assert.equal(s.expired.size, full.records - s.records);
  assert.equal(await count(small), s.records);
  await small.close();
});

test('a store whose staging holds VARCHAR strings (before codes) is migrated at open: same rows, same strings, appends go on', async () => {
  const dir = tempDataDir();
  dirs.push(dir);
  const old = samples(500, 1, 5);
  // The layout the store had: strings as VARCHAR in staging, the sources table beside it.
  const db = await DuckDBInstance.create(path.join(dir, 'staging.duckdb'));
  const conn = await db.connect();
  const sqlType = { string: 'VARCHAR', ip: 'UINTEGER', u8: 'UTINYINT', u16: 'USMALLINT', u32: 'UINTEGER', time: 'BIGINT', count: 'BIGINT' } as const;
  await conn.run(`CREATE TABLE staging (${COLUMNS.map((c) => `${c.name} ${sqlType[c.kind]}`).join(', ')})`);
  await conn.run('CREATE TABLE sources (source VARCHAR PRIMARY KEY, seq BIGINT, seen BIGINT)');
  await conn.run(`INSERT INTO sources VALUES ('h1/0000000a', 500, ${Date.now()})`);
  const appender = await conn.createAppender('staging');
  for (const s of old) {
    for (const c of COLUMNS) {
      const v = s[c.name as keyof typeof s];
      if (v === null) appender.appendNull();
      else if (c.kind === 'string') appender.appendVarchar(v as string);
      else if (c.kind === 'time' || c.kind === 'count') appender.appendBigInt(BigInt(v));
      else appender.appendUInteger(v as number);
    }
    appender.endRow();
  }
  appender.closeSync();
  conn.closeSync();
  db.closeSync();

  const perHost = async (store: DuckFlowStore) =>
    (await store.select(0, Number.MAX_SAFE_INTEGER, (rel) => ({ sql: `SELECT vrouter, sourcevn, action, count(*)::INTEGER AS n, count(nw_ace_uuid)::INTEGER AS ace FROM ${rel} GROUP BY ALL ORDER BY ALL`, params: [] }))).map((r) => JSON.stringify(r));
  const expected = (list: typeof old) => {
    const m = new Map<string, { n: number; ace: number }>();
    for (const s of list) {
      const k = JSON.stringify([s.vrouter, s.sourcevn, s.action]);
      const e = m.get(k) ?? { n: 0, ace: 0 };
      e.n++;
      if (s.nw_ace_uuid !== null) e.ace++;
      m.set(k, e);
    }
    return [...m].map(([k, e]) => {
      const [vrouter, sourcevn, action] = JSON.parse(k) as string[];
      return { vrouter, sourcevn, action, ...e };
    });
  };
  const sortRows = (rows: object[]) => rows.map((r) => JSON.stringify(r)).sort();
  let store = await open(dir);
  assert.equal(await store.committed('h1/0000000a'), 500, 'the sequence is kept');
  assert.deepEqual((await perHost(store)).sort(), sortRows(expected(old)));
  const more = samples(300, 1, 6);
  assert.equal(await store.append('h1/0000000a', 501, encodeBatch(more)), 800);
  await store.close();
  store = await open(dir);
  assert.deepEqual((await perHost(store)).sort(), sortRows(expected([...old, ...more])), 'old and new strings share the codes, across a reopen');
  await store.maintain(NOW + 61_000);
  assert.deepEqual((await perHost(store)).sort(), sortRows(expected([...old, ...more])), 'and read back from Parquet');
  assert.equal((await store.stats()).staged, 0);
  await store.close();
});
