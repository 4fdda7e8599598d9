// Worker thread of SqliteStore: checkpoints the WAL on a connection of its own, so that
// the copy into the database file and its fsyncs never block the server's event loop.
// PASSIVE checkpoints neither wait for nor block the writer; what they leave behind, the
// writer's own checkpoint finishes (rare, and the shorter the more we copied).

import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * Pause before the next checkpoint: none to speak of while the WAL grows faster than we
 * copy it (what we leave, the writer copies itself, on the event loop), short once caught
 * up, and longer and longer, up to a bound, while nothing is written.
 */
const BEHIND_MS = 1;
const CAUGHT_UP_MS = 20;
const IDLE_MAX_MS = 100;

const { file } = workerData as { file: string };
const db = new Database(file);
// The fsyncs that make a checkpoint safe are those of the connection that runs it.
db.pragma('synchronous = NORMAL');

let timer: NodeJS.Timeout | undefined;
let lastLog = -1;
let idleMs = CAUGHT_UP_MS;

function checkpoint(): void {
  let delay = CAUGHT_UP_MS;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (r && r.checkpointed < r.log) delay = BEHIND_MS;
    else if (r && r.log === lastLog) delay = idleMs = Math.min(idleMs * 2, IDLE_MAX_MS);
    else idleMs = CAUGHT_UP_MS;
    lastLog = r?.log ?? -1;
  } catch {
    // Busy or a transient error: the next round tries again, and the writer has its own bound.
  }
  timer = setTimeout(checkpoint, delay);
}

parentPort!.on('message', (message) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  db.close();
  parentPort!.close();
});

checkpoint();
