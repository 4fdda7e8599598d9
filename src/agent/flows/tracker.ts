// Turns conntrack entries into flow samples. A flow is known from its NEW event (or, when
// that was missed, from the table or its DESTROY); each table read emits what its counters
// gained since the last sample (long-lived flows show up while they live), and its DESTROY
// the rest with the teardown time. Entries outside Cirrus's zones (the host's own traffic)
// are not flows of workloads and are ignored. Pure apart from the clock it is given.

import crypto from 'node:crypto';
import type { FlowSample } from '../../analytics/schema.js';
import type { CtEntry } from './conntrack.js';
import { type FlowContext, vnName } from './context.js';

interface Tracked {
  /** Everything but time and counters, fixed when the flow was first seen. */
  base: Omit<FlowSample, 't' | 'teardown_time' | 'bytes' | 'packets' | 'reverse_bytes' | 'reverse_packets'>;
  /** Counters as of the last sample. */
  sent: [number, number, number, number];
  seenInRead: number;
}

export class FlowTracker {
  private readonly flows = new Map<string, Tracked>();
  private hi = crypto.randomBytes(4).readUInt32BE();
  private lo = 0;
  private reads = 0;
  /** Flows that vanished from the table without a DESTROY event (events lost). */
  lost = 0;

  constructor(private readonly emit: (samples: FlowSample[]) => void) {}

  get size(): number {
    return this.flows.size;
  }

  /** NEW and DESTROY events. */
  onEvents(entries: CtEntry[], ctx: FlowContext | undefined, nowUs: number): void {
    if (!ctx) return;
    const out: FlowSample[] = [];
    for (const e of entries) {
      const key = keyOf(e);
      if (e.event === 'new') {
        if (!this.flows.has(key)) this.track(e, ctx, nowUs, false);
        continue;
      }
      const f = this.flows.get(key) ?? this.track(e, ctx, nowUs, false);
      if (!f) continue;
      this.flows.delete(key);
      const teardown = e.stopNs ? Math.floor(e.stopNs / 1000) : nowUs;
      out.push(this.sample(f, e, teardown, teardown));
    }
    if (out.length) this.emit(out);
  }

  /**
   * A full table read: samples of what each flow gained. The first read after start takes
   * the counters as they are (a previous run of the agent reported what came before).
   */
  onTable(entries: CtEntry[], ctx: FlowContext | undefined, nowUs: number): void {
    if (!ctx) return;
    const read = ++this.reads;
    const out: FlowSample[] = [];
    for (const e of entries) {
      const key = keyOf(e);
      const f = this.flows.get(key) ?? this.track(e, ctx, nowUs, read === 1);
      if (!f) continue;
      f.seenInRead = read;
      const gained = e.orig.packets > f.sent[1] || e.reply.packets > f.sent[3];
      if (gained) out.push(this.sample(f, e, nowUs, null));
    }
    for (const [key, f] of this.flows) {
      if (f.seenInRead !== read && f.base.setup_time < nowUs - 1_000_000) {
        this.flows.delete(key);
        this.lost++;
      }
    }
    if (out.length) this.emit(out);
  }

  private track(e: CtEntry, ctx: FlowContext, nowUs: number, baseline: boolean): Tracked | undefined {
    const networks = ctx.zones.get(e.zone);
    if (!networks) return undefined;
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
    const f: Tracked = {
      base: {
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
        setup_time: e.startNs ? Math.floor(e.startNs / 1000) : nowUs,
        nat_sourceip: snat ? e.reply.dst : null,
        nat_destip: dnat ? e.reply.src : null,
        nat_sport: snat ? e.reply.dport : null,
        nat_dport: dnat ? e.reply.sport : null,
      },
      sent: baseline ? [e.orig.bytes, e.orig.packets, e.reply.bytes, e.reply.packets] : [0, 0, 0, 0],
      seenInRead: this.reads,
    };
    this.flows.set(keyOf(e), f);
    return f;
  }

  private sample(f: Tracked, e: CtEntry, t: number, teardown: number | null): FlowSample {
    const now: Tracked['sent'] = [e.orig.bytes, e.orig.packets, e.reply.bytes, e.reply.packets];
    // Counters only grow; a smaller one (a DESTROY without counters) gains nothing.
    const d = now.map((v, i) => Math.max(0, v - f.sent[i]!));
    f.sent = now.map((v, i) => Math.max(v, f.sent[i]!)) as Tracked['sent'];
    return { ...f.base, t, teardown_time: teardown, bytes: d[0]!, packets: d[1]!, reverse_bytes: d[2]!, reverse_packets: d[3]! };
  }
}

/** Conntrack ids are reused: the id with the original tuple and zone names one entry. */
const keyOf = (e: CtEntry): string => `${e.id}/${e.zone}/${e.orig.src}/${e.orig.sport}/${e.orig.dst}/${e.orig.dport}/${e.protocol}`;
