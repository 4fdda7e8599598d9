// Synthetic flow samples for the analytics tests and the bench: a few hosts and networks,
// skewed talkers (a few sources carry most bytes), realistic ports, sample times spread over
// a span; seeded, so a run replays.

import type { FlowSample } from '../../src/analytics/schema.js';
import { prng } from './prng.js';

export interface SyntheticOptions {
  seed?: number;
  /** Sample times fall in [startMs, endMs). */
  startMs: number;
  endMs: number;
  hosts?: number;
  networks?: number;
  /** Times in order, spread evenly over the span for this many samples (as an agent ships them); else at random. */
  ordered?: number;
}

const BASE = (10 << 24) >>> 0;
const PORTS = [80, 443, 53, 22, 514, 8080, 5432, 6379];

/** A generator of `count`-long arrays of samples (call it repeatedly for more). */
export function syntheticFlows(opts: SyntheticOptions): (count: number) => FlowSample[] {
  const rnd = prng(opts.seed ?? 1);
  const hosts = opts.hosts ?? 16;
  const networks = opts.networks ?? 8;
  let lo = 0;
  // Skew: a source index drawn as floor(n * u^3) makes the low indexes the top talkers.
  const skewed = (n: number) => Math.floor(n * rnd() ** 3);
  return (count) => {
    const out: FlowSample[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const host = Math.floor(rnd() * hosts);
      const srcNet = Math.floor(rnd() * networks);
      const dstNet = rnd() < 0.8 ? srcNet : Math.floor(rnd() * networks);
      const at = opts.ordered ? Math.min(1, (lo + rnd()) / opts.ordered) : rnd();
      const t = Math.floor((opts.startMs + at * (opts.endMs - opts.startMs)) * 1000);
      const dur = Math.floor(rnd() * 5_000_000);
      const packets = 1 + skewed(200);
      const deny = rnd() < 0.02;
      out[i] = {
        t,
        flow_hi: 0x5eed0000 + host,
        flow_lo: lo++,
        vrouter: `host-${host}`,
        vrouter_ip: (BASE + 0xfe0000 + host) >>> 0,
        other_vrouter_ip: (BASE + 0xfe0000 + Math.floor(rnd() * hosts)) >>> 0,
        sourcevn: `default-domain:admin:net${srcNet}`,
        destvn: `default-domain:admin:net${dstNet}`,
        sourceip: (BASE + (srcNet << 16) + skewed(2000)) >>> 0,
        destip: (BASE + (dstNet << 16) + Math.floor(rnd() * 2000)) >>> 0,
        protocol: rnd() < 0.85 ? 6 : 17,
        sport: 32768 + Math.floor(rnd() * 28000),
        dport: PORTS[skewed(PORTS.length)]!,
        direction_ing: rnd() < 0.5 ? 1 : 0,
        action: deny ? 'deny' : 'pass',
        nw_ace_uuid: deny ? '6b8e5b8c-0000-4000-8000-00000000dead' : null,
        sg_rule_uuid: null,
        setup_time: t - dur,
        teardown_time: rnd() < 0.9 ? t : null,
        bytes: packets * (60 + Math.floor(rnd() * 1400)),
        packets,
        reverse_bytes: deny ? 0 : packets * 60,
        reverse_packets: deny ? 0 : packets,
        nat_sourceip: null,
        nat_destip: null,
        nat_sport: null,
        nat_dport: null,
      };
    }
    return out;
  };
}
