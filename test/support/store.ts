// A SqliteStore on a file of its own for one test, closed and removed afterwards.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.js';

export function tempDbFile(): { file: string; done: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-store-'));
  return { file: path.join(dir, 'config.db'), done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export async function withStore(fn: (s: SqliteStore, file: string) => Promise<void>, options: SqliteStoreOptions = {}): Promise<void> {
  const { file, done } = tempDbFile();
  const s = new SqliteStore(file, options);
  try {
    await fn(s, file);
  } finally {
    await s.close();
    done();
  }
}
