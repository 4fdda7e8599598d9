// A virtual network's traffic summary (TF's UveVirtualNetworkAgent, in spirit): bytes,
// packets and flows in and out, per peer network, top peer addresses and per local
// address (interface) figures, over a time window. Each flow counts once: by the record of
// the host where it entered from its source workload (direction_ing = 1).

import { formatIpv4 } from '../util/ipv4.js';
import type { FlowStore } from './store.js';

export interface VnUve {
  UveVirtualNetworkAgent: {
    in_bytes: number;
    out_bytes: number;
    in_tpkts: number;
    out_tpkts: number;
    ingress_flow_count: number;
    egress_flow_count: number;
    denied_flow_count: number;
    vn_stats: { other_vn: string; in_bytes: number; out_bytes: number; in_tpkts: number; out_tpkts: number }[];
    top_peers: { ip: string; vn: string; bytes: number; flows: number }[];
    interface_stats: { ip: string; in_bytes: number; out_bytes: number; flows: number }[];
  };
  start_time: number;
  end_time: number;
}

const TOP = 10;

export async function vnUve(store: FlowStore, vn: string, startUs: number, endUs: number): Promise<VnUve> {
  const scope = `t BETWEEN ${Math.floor(startUs)} AND ${Math.floor(endUs)} AND direction_ing = 1 AND (sourcevn = $1 OR destvn = $1)`;
  // From the network's side: what its workloads sent (out) and received (in), per flow.
  const sides = `
    CASE WHEN sourcevn = $1 THEN bytes ELSE 0 END + CASE WHEN destvn = $1 THEN reverse_bytes ELSE 0 END AS out_b,
    CASE WHEN sourcevn = $1 THEN packets ELSE 0 END + CASE WHEN destvn = $1 THEN reverse_packets ELSE 0 END AS out_p,
    CASE WHEN destvn = $1 THEN bytes ELSE 0 END + CASE WHEN sourcevn = $1 THEN reverse_bytes ELSE 0 END AS in_b,
    CASE WHEN destvn = $1 THEN packets ELSE 0 END + CASE WHEN sourcevn = $1 THEN reverse_packets ELSE 0 END AS in_p,
    CASE WHEN sourcevn = $1 THEN destvn ELSE sourcevn END AS other_vn,
    CASE WHEN sourcevn = $1 THEN destip ELSE sourceip END AS peer,
    CASE WHEN sourcevn = $1 THEN sourceip ELSE destip END AS local,
    sourcevn = $1 AS egress, destvn = $1 AS ingress, action, flow_hi, flow_lo`;
  const of = (rel: string) => `(SELECT ${sides} FROM ${rel} WHERE ${scope})`;
  const n = (v: unknown) => Number(v ?? 0);
  const [totals] = await store.select(startUs, endUs, (rel) => ({
    sql: `SELECT sum(in_b) AS in_b, sum(out_b) AS out_b, sum(in_p) AS in_p, sum(out_p) AS out_p,
      count(DISTINCT CASE WHEN ingress THEN (flow_hi, flow_lo) END) AS ing, count(DISTINCT CASE WHEN egress THEN (flow_hi, flow_lo) END) AS egr,
      count(DISTINCT CASE WHEN action = 'deny' THEN (flow_hi, flow_lo) END) AS denied FROM ${of(rel)}`,
    params: [vn],
  }));
  const perVn = await store.select(startUs, endUs, (rel) => ({
    sql: `SELECT other_vn, sum(in_b) AS in_b, sum(out_b) AS out_b, sum(in_p) AS in_p, sum(out_p) AS out_p FROM ${of(rel)} GROUP BY other_vn ORDER BY other_vn`,
    params: [vn],
  }));
  const peers = await store.select(startUs, endUs, (rel) => ({
    sql: `SELECT peer, any_value(other_vn) AS vn, sum(in_b + out_b) AS b, count(DISTINCT (flow_hi, flow_lo)) AS f FROM ${of(rel)} GROUP BY peer ORDER BY b DESC LIMIT ${TOP}`,
    params: [vn],
  }));
  const locals = await store.select(startUs, endUs, (rel) => ({
    sql: `SELECT local, sum(in_b) AS in_b, sum(out_b) AS out_b, count(DISTINCT (flow_hi, flow_lo)) AS f FROM ${of(rel)} GROUP BY local ORDER BY sum(in_b) + sum(out_b) DESC LIMIT 100`,
    params: [vn],
  }));
  return {
    UveVirtualNetworkAgent: {
      in_bytes: n(totals?.['in_b']),
      out_bytes: n(totals?.['out_b']),
      in_tpkts: n(totals?.['in_p']),
      out_tpkts: n(totals?.['out_p']),
      ingress_flow_count: n(totals?.['ing']),
      egress_flow_count: n(totals?.['egr']),
      denied_flow_count: n(totals?.['denied']),
      vn_stats: perVn.map((r) => ({ other_vn: String(r['other_vn']), in_bytes: n(r['in_b']), out_bytes: n(r['out_b']), in_tpkts: n(r['in_p']), out_tpkts: n(r['out_p']) })),
      top_peers: peers.map((r) => ({ ip: formatIpv4(n(r['peer'])), vn: String(r['vn']), bytes: n(r['b']), flows: n(r['f']) })),
      interface_stats: locals.map((r) => ({ ip: formatIpv4(n(r['local'])), in_bytes: n(r['in_b']), out_bytes: n(r['out_b']), flows: n(r['f']) })),
    },
    start_time: startUs,
    end_time: endUs,
  };
}
