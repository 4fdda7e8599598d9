// Make before break for a host that stops seeing a network: its forwarding state for that
// network (the network, its routes, floating IPs) is withdrawn a moment after the rest of
// the delta, so that other hosts have moved their traffic first. The case that matters: the
// last back end of an ECMP floating IP leaves a host — clients' next-hop groups still send
// it new connections until their agents have applied the same change; meanwhile the host
// forwards them to the remaining back ends instead of dropping them: the floating IP's new
// value (the back ends that remain) goes to it at once, its withdrawal later. Security state
// (policy blocks, leaks, security groups) and the host's own ports are never delayed.

import type { EntryValue } from './protocol.js';
import type { Delta } from './routing.js';

/** How long a host keeps forwarding for a network it no longer sees. */
export const WITHDRAW_DELAY_MS = 2_000;

const NETWORK = 'n/';
const ROUTE = 'r/';
const FLOATING = 'f/';

/** The floating IPs set in one round's deltas, by key: a floating IP's value is the same for every host. */
export function floatingValues(deltas: Iterable<Delta>): Map<string, EntryValue> {
  const out = new Map<string, EntryValue>();
  for (const d of deltas) for (const [k, v] of d.set) if (k.startsWith(FLOATING)) out.set(k, v);
  return out;
}

/**
 * Splits a host's delta: what is sent now, and the keys withdrawn later — the networks it
 * deletes (`n/X`) with their routes (`r/X/...`), and floating IPs deleted with them; of
 * those, one that changed this round (`fresh`: its new value) is also set now.
 * A route or floating IP deleted while its host still sees the network goes at once.
 */
export function splitWithdrawals(d: Delta, fresh: ReadonlyMap<string, EntryValue> = new Map()): { now: Delta; later: string[] } {
  const dropped = new Set(d.del.filter((k) => k.startsWith(NETWORK)).map((k) => k.slice(NETWORK.length)));
  if (!dropped.size) return { now: d, later: [] };
  const delayed = (k: string) => k.startsWith(NETWORK) || k.startsWith(FLOATING) || (k.startsWith(ROUTE) && dropped.has(k.slice(ROUTE.length, k.indexOf('/', ROUTE.length))));
  const later = d.del.filter(delayed);
  const updated = later.flatMap((k): Delta['set'] => (fresh.has(k) ? [[k, fresh.get(k)!]] : []));
  return { now: { set: [...d.set, ...updated], del: d.del.filter((k) => !delayed(k)) }, later };
}

/** One agent session's delayed withdrawals. */
export class DelayedWithdrawals {
  private readonly pending = new Set<{ keys: Set<string>; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (del: string[]) => void,
    private readonly delayMs = WITHDRAW_DELAY_MS,
  ) {}

  /** Sends `d` now (a delta may be empty of immediate changes), holding back its withdrawals; `fresh`: see splitWithdrawals. */
  deliver(d: Delta, sendNow: (d: Delta) => void, fresh?: ReadonlyMap<string, EntryValue>): void {
    // A key set again is no longer to be withdrawn.
    for (const p of this.pending) for (const [k] of d.set) p.keys.delete(k);
    const { now, later } = splitWithdrawals(d, fresh);
    if (now.set.length || now.del.length) sendNow(now);
    if (!later.length) return;
    const p = {
      keys: new Set(later),
      timer: setTimeout(() => {
        this.pending.delete(p);
        if (p.keys.size) this.send([...p.keys]);
      }, this.delayMs),
    };
    this.pending.add(p);
  }

  /** Forgets what is pending (the session resynced or ended: a sync carries the whole state). */
  clear(): void {
    for (const p of this.pending) clearTimeout(p.timer);
    this.pending.clear();
  }
}
