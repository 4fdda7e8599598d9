// Turns conntrack entries into flow samples. Flows are found two ways: a table read (each
// read samples what the flows' counters gained since their last sample: long-lived flows
// show up while they live) and DESTROY events (the rest, with the teardown time; a flow that
// ended before any read saw it is one sample, built from its DESTROY alone: it carries the
// kernel's start time and final counters). Entries outside Cirrus's zones (the host's own
// traffic) are not flows of workloads and are ignored. Pure apart from the clock it is given;
// samples gather until flush().

import crypto from 'node:crypto';
import type { FlowSample } from '../../analytics/schema.js';
import type { CtEntry } from './conntrack-xml.js';
import { type FlowContext, vnName } from './context.js';

interface Tracked {
  /** Everything but time and counters, fixed when the flow was first seen (the shape of a sample, copied per sample). */
  base: FlowSample;
  /** Counters as of the last sample. */
  bytes: number;
  packets: number;
  reverseBytes: number;
  reversePackets: number;
  /** The last read that listed it. */
  seenInRead: number;
}

export class FlowTracker {
  /** By key() (see there): conntrack id and a hash of the original tuple. */
  private readonly flows = new Map<number, Tracked>();
  private hi = crypto.randomBytes(4).readUInt32BE();
  private lo = 0;
  private reads = 0;
  /** Flows whose DESTROY came while a read was under way: the listing may still hold them. */
  private destroyedInRead: Set<number> | undefined;
  private out: FlowSample[] = [];
  /** Flows that vanished from the table without a DESTROY event (events lost). */
  lost = 0;

  /**
   * `startedUs`: when this run began; flows that started before it are taken with their
   * counters as they are when first read (a previous run reported what came before).
   */
  constructor(
    private readonly emit: (samples: FlowSample[]) => void,
    private readonly startedUs: number,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  /** A DESTROY event (other events are ignored). */
  onEvent(e: CtEntry, ctx: FlowContext | undefined, nowUs: number): void {
    if (!ctx || e.event !== 'destroy') return;
    const key = keyOf(e);
    const teardown = e.stopUs || nowUs;
    const f = this.lookup(key, e);
    this.destroyedInRead?.add(key);
    if (f) {
      this.flows.delete(key);
      this.out.push(this.sample(f, e, teardown, teardown));
      return;
    }
    // Ended before a read saw it: one sample, from its start.
    const s = this.describe(e, ctx, nowUs);
    if (!s) return;
    s.t = s.teardown_time = teardown;
    s.bytes = e.orig.bytes;
    s.packets = e.orig.packets;
    s.reverse_bytes = e.reply.bytes;
    s.reverse_packets = e.reply.packets;
    this.out.push(s);
  }

  /** A table read begins: then one tableEntry() per entry listed, then endRead() (or abortRead() when the listing failed). */
  beginRead(): void {
    this.reads++;
    this.destroyedInRead = new Set();
  }

  /** An entry of the table: a sample of what it gained since its last. */
  tableEntry(e: CtEntry, ctx: FlowContext | undefined, nowUs: number): void {
    if (!ctx) return;
    const key = keyOf(e);
    if (this.destroyedInRead?.has(key)) return; // its DESTROY already counted everything
    let f = this.lookup(key, e);
    if (!f) {
      const base = this.describe(e, ctx, nowUs);
      if (!base) return;
      const baseline = e.startUs ? e.startUs < this.startedUs : this.reads === 1;
      f = baseline
        ? { base, bytes: e.orig.bytes, packets: e.orig.packets, reverseBytes: e.reply.bytes, reversePackets: e.reply.packets, seenInRead: 0 }
        : { base, bytes: 0, packets: 0, reverseBytes: 0, reversePackets: 0, seenInRead: 0 };
      this.flows.set(key, f);
    }
    f.seenInRead = this.reads;
    if (e.orig.packets > f.packets || e.reply.packets > f.reversePackets) this.out.push(this.sample(f, e, nowUs, null));
  }

  /**
   * The read is complete. A flow missing from two reads in a row left the table without its
   * DESTROY reaching us (one read's grace: its DESTROY may still be on its way).
   */
  endRead(): void {
    this.destroyedInRead = undefined;
    for (const [key, f] of this.flows) {
      if (f.seenInRead < this.reads - 1) {
        this.flows.delete(key);
        this.lost++;
      }
    }
    this.flush();
  }

  abortRead(): void {
    this.destroyedInRead = undefined;
    this.flush();
  }

  /** Emits the samples gathered since the last flush. */
  flush(): void {
    if (!this.out.length) return;
    const out = this.out;
    this.out = [];
    this.emit(out);
  }

  /** The tracked flow of an entry; one whose key matched but not its tuple (a hash collision, or a lost DESTROY and a reused id) is dropped as lost. */
  private lookup(key: number, e: CtEntry): Tracked | undefined {
    const f = this.flows.get(key);
    if (!f) return undefined;
    const b = f.base;
    if (b.sourceip === e.orig.src && b.destip === e.orig.dst && b.sport === e.orig.sport && b.dport === e.orig.dport && b.protocol === e.protocol) return f;
    this.flows.delete(key);
    this.lost++;
    return undefined;
  }

  /** A new flow's sample with no time and no counters, or undefined when it is no workload's. */
  private describe(e: CtEntry, ctx: FlowContext, nowUs: number): FlowSample | undefined {
    if (!ctx.zones.has(e.zone)) return undefined;
    const src = ctx.endpoint(e.zone, e.orig.src);
    // The destination as it is after NAT (a floating IP leads to the workload behind it).
    const dst = ctx.endpoint(e.zone, e.reply.src);
    if (!src.network && !dst.network) return undefined;
    const { nwAce, sgRule } = ctx.decidingRules(src, dst, e.orig.src, e.reply.src, e.protocol, e.reply.sport);
    const dnat = e.reply.src !== e.orig.dst || e.reply.sport !== e.orig.dport;
    const snat = e.reply.dst !== e.orig.src || e.reply.dport !== e.orig.sport;
    if (this.lo === 0xffffffff) {
      this.hi = crypto.randomBytes(4).readUInt32BE();
      this.lo = 0;
    }
    return {
      t: 0,
      flow_hi: this.hi,
      flow_lo: ++this.lo,
      vrouter: ctx.host,
      vrouter_ip: ctx.underlayIp,
      other_vrouter_ip: (src.port ? dst.vtep : src.vtep) ?? ctx.underlayIp,
      sourcevn: vnName(src),
      destvn: vnName(dst),
      sourceip: e.orig.src,
      destip: e.orig.dst,
      protocol: e.protocol,
      sport: e.orig.sport,
      dport: e.orig.dport,
      direction_ing: src.port ? 1 : 0,
      action: 'pass',
      nw_ace_uuid: nwAce,
      sg_rule_uuid: sgRule,
      setup_time: e.startUs || nowUs,
      teardown_time: null,
      bytes: 0,
      packets: 0,
      reverse_bytes: 0,
      reverse_packets: 0,
      nat_sourceip: snat ? e.reply.dst : null,
      nat_destip: dnat ? e.reply.src : null,
      nat_sport: snat ? e.reply.dport : null,
      nat_dport: dnat ? e.reply.sport : null,
    };
  }

  private sample(f: Tracked, e: CtEntry, t: number, teardown: number | null): FlowSample {
    // A copy of the base (same shape: no new hidden class); counters only grow, a smaller one (a DESTROY without counters) gains nothing.
    const s = { ...f.base };
    s.t = t;
    s.teardown_time = teardown;
    s.bytes = Math.max(0, e.orig.bytes - f.bytes);
    s.packets = Math.max(0, e.orig.packets - f.packets);
    s.reverse_bytes = Math.max(0, e.reply.bytes - f.reverseBytes);
    s.reverse_packets = Math.max(0, e.reply.packets - f.reversePackets);
    f.bytes = Math.max(f.bytes, e.orig.bytes);
    f.packets = Math.max(f.packets, e.orig.packets);
    f.reverseBytes = Math.max(f.reverseBytes, e.reply.bytes);
    f.reversePackets = Math.max(f.reversePackets, e.reply.packets);
    return s;
  }
}

/**
 * Conntrack ids are 32-bit hashes and get reused: the key is the id and 21 bits of a hash of
 * the original tuple and zone (a safe integer: no string per entry); lookup() checks the tuple.
 */
function keyOf(e: CtEntry): number {
  const o = e.orig;
  let h = Math.imul(o.src ^ 0x9e3779b9, 0x85ebca6b) ^ o.dst;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ ((o.sport << 16) | o.dport);
  h = Math.imul(h ^ (h >>> 16), 0x27d4eb2f) ^ ((e.zone << 8) | e.protocol);
  h ^= h >>> 15;
  return (h & 0x1fffff) * 0x100000000 + e.id;
}
