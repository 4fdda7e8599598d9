// The flow store's interface: what the collector writes through and the query engine reads
// through. One implementation today (duckdb-store.ts: DuckDB staging + Parquet windows); a
// cluster store would implement the same.

import type { FlowBatch } from './schema.js';

export interface Retention {
  /** Samples older than this (ms) go. */
  maxAgeMs: number;
  /** The store's files may take this many bytes; the oldest go first. */
  maxBytes: number;
}

export interface StoreStats {
  /** Samples kept (staged and in closed windows). */
  records: number;
  /** Bytes the store takes on disk. */
  bytes: number;
  /** Closed-window files. */
  files: number;
  /** Samples not yet moved out of staging. */
  staged: number;
  /** Transactions that stored samples since start. */
  commits: number;
  /** Samples removed by retention since start, by reason. */
  expired: { age: number; size: number };
}

/** A parameterised statement over the relation `flows` (the store decides what that is). */
export interface Statement {
  sql: string;
  params: (string | number)[];
}

export interface FlowStore {
  /**
   * Appends the samples `first`..`first + count - 1` of `source` (a sender's sequence
   * numbers), skipping those at or below what the store already holds of that source, and
   * resolves once they are durable with the highest sequence number now held.
   */
  append(source: string, first: number, batch: FlowBatch): Promise<number>;
  /** The highest sequence number held of `source` (0: none). */
  committed(source: string): Promise<number>;
  /** Runs `build('flows-relation')` over the samples whose time `t` is in [startUs, endUs]. */
  select(startUs: number, endUs: number, build: (relation: string) => Statement): Promise<Record<string, unknown>[]>;
  /** Moves what is due out of staging and applies the retention; runs on its own periodically too. */
  maintain(now?: number): Promise<void>;
  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}
