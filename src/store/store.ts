// The configuration store: a revisioned key-value space with transactions and a change
// feed, shaped after etcd's model so that an etcd backend can implement it unchanged.
// Every committed transaction gets one new revision; every key remembers the revision
// that created it and the one that last modified it.

export interface KeyValue {
  key: string;
  value: string;
  createRev: number;
  modRev: number;
}

/** One key changed by one transaction; `value` is undefined for a deletion. */
export interface Change {
  rev: number;
  key: string;
  value?: string;
  /** Given when a store restores a key (after a failed group commit): its creation revision. */
  createRev?: number;
}

/**
 * A guard on a transaction: the key's modification revision must equal `modRev`
 * (0 means the key must not exist). This is etcd's `Compare(ModRevision(key), "=", n)`.
 */
export interface Compare {
  key: string;
  modRev: number;
}

export interface Txn {
  compares: Compare[];
  puts: { key: string; value: string }[];
  deletes: string[];
}

export type CommitResult = { ok: true; rev: number } | { ok: false; failedKey: string };

/** Raised by `changesSince` when the requested history was compacted away: do a full resync. */
export class CompactedError extends Error {
  constructor(readonly requested: number, readonly oldest: number) {
    super(`revision ${requested} was compacted; oldest retained change is ${oldest}`);
  }
}

export type WatchCallback = (changes: Change[]) => void;

export interface Store {
  /** The revision of the latest committed transaction (0 for an empty store). */
  revision(): Promise<number>;
  get(key: string): Promise<KeyValue | undefined>;
  /** All keys starting with `prefix`, in key order, with the revision they were read at. */
  range(prefix: string): Promise<{ kvs: KeyValue[]; rev: number }>;
  /** Applies the transaction atomically when every compare holds. */
  commit(txn: Txn): Promise<CommitResult>;
  /**
   * Changes with revision greater than `rev`, oldest first, of at most `revisions`
   * revisions: a revision's changes are never split.
   */
  changesSince(rev: number, revisions?: number): Promise<Change[]>;
  /**
   * Delivers every change with revision greater than `fromRev` (history first, then live,
   * in commit order, grouped per transaction). Returns a function that stops the watch.
   */
  watch(fromRev: number, callback: WatchCallback): Promise<() => void>;
  /**
   * For stores that announce commits to watchers before they are durable (group commit):
   * the pending durability, which an answer computed from watched state must wait for
   * (rejected if the group was rolled back). Undefined when nothing is pending.
   */
  pendingCommits?(): Promise<void> | undefined;
  close(): Promise<void>;
}
