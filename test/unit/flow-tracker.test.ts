// From conntrack entries to flow samples: the network context of each end (local port,
// remote workload and its host, zone), counters per table read and at teardown, a flow known
// only from its DESTROY, NAT, the deciding rules, entries that are not Cirrus's, flows whose
// DESTROY came during a read or never came; denied packets summed per attempt.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlowSample } from '../../src/analytics/schema.js';
import { ConntrackXmlReader, type CtEntry } from '../../src/agent/flows/conntrack-xml.js';
import { flowContext } from '../../src/agent/flows/context.js';
import { DeniedAttempts } from '../../src/agent/flows/denied.js';
import { FlowTracker } from '../../src/agent/flows/tracker.js';
import type { HostState, NetworkState, PortState } from '../../src/agent/host-state.js';
import { parseIpv4 } from '../../src/util/ipv4.js';

const RED: NetworkState = {
  uuid: 'red', name: 'd:p:red', id: 4, table: 1_000_004, serviceAddresses: ['10.1.0.254'], subnets: ['10.1.0.0/24'], vni: 4,
  acl: [{ uuid: 'allow-web', action: 'pass', protocol: 6, src: null, dst: ['10.1.0.0/24'], dports: [[80, 80]] }],
};
const PORT = { vmiUuid: 'v1', network: 'red', hostIf: 'cv-1', mac: '02:00:00:00:00:01', address: '10.1.0.10', prefixLen: 24, securityGroups: ['web'] } as PortState;
const HOST: HostState = {
  networks: [RED],
  ports: [PORT],
  remotes: [{ network: 'red', address: '10.1.0.20', vtep: '10.254.0.2' }],
  leaks: [],
  pending: [],
  groups: new Map([['web', { uuid: 'web', name: 'd:p:web', ingress: [], egress: [{ uuid: 'egress-all', action: 'pass', src: null, dst: null }] }]]),
};
const ZONE = 5; // zonesOf: the smallest network id of the group, plus one
const ctx = flowContext(HOST, { host: 'h1', underlayIp: '10.254.0.1' });
const ip = (s: string) => parseIpv4(s)!;

const tuple = (src: string, dst: string, sport: number, dport: number, packets?: number, bytes?: number) =>
  `<layer3 protonum="2" protoname="ipv4"><src>${src}</src><dst>${dst}</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>${sport}</sport><dport>${dport}</dport></layer4>${packets !== undefined ? `<counters><packets>${packets}</packets><bytes>${bytes}</bytes></counters>` : ''}`;
function flow(type: string | undefined, o: [string, string, number, number], r: [string, string, number, number], counters?: [number, number, number, number], opts: { zone?: number; id?: number; start?: number; stop?: number } = {}): string {
  const ts = opts.start ? `<timestamp><start>${opts.start}</start>${opts.stop ? `<stop>${opts.stop}</stop>` : ''}</timestamp>` : '';
  return `<flow${type ? ` type="${type}"` : ''}><meta direction="original">${tuple(...o, counters?.[0], counters?.[1])}</meta><meta direction="reply">${tuple(...r, counters?.[2], counters?.[3])}</meta><meta direction="independent"><zone>${opts.zone ?? ZONE}</zone><id>${opts.id ?? 42}</id>${ts}</meta></flow>`;
}

/** The entries of conntrack XML (copies: the reader reuses its entry). */
function entries(xml: string): CtEntry[] {
  const out: CtEntry[] = [];
  const r = new ConntrackXmlReader((e) => out.push(structuredClone(e)));
  r.push(Buffer.from(`${xml}\n`));
  return out;
}

/** A tracker and what it emitted. */
function tracker(startedUs = 0): { tracker: FlowTracker; out: FlowSample[]; read: (xml: string, nowUs: number) => void; destroy: (xml: string, nowUs: number) => void } {
  const out: FlowSample[] = [];
  const t = new FlowTracker((s) => out.push(...s), startedUs);
  return {
    tracker: t,
    out,
    read(xml, nowUs) {
      t.beginRead();
      for (const e of entries(xml)) t.tableEntry(e, ctx, nowUs);
      t.endRead();
    },
    destroy(xml, nowUs) {
      for (const e of entries(xml)) t.onEvent(e, ctx, nowUs);
      t.flush();
    },
  };
}

type Tuple = [string, string, number, number];
/** Original and reply tuples of 10.1.0.10:sport → 10.1.0.20:80. */
const origOf = (sport: number): Tuple => ['10.1.0.10', '10.1.0.20', sport, 80];
const replyOf = (sport: number): Tuple => ['10.1.0.20', '10.1.0.10', 80, sport];
const O = origOf(40000);
const R = replyOf(40000);
const counters = (s: FlowSample) => [s.bytes, s.packets, s.reverse_bytes, s.reverse_packets];

test('a flow across hosts: a table read (what it gained), then DESTROY (the rest, with the teardown time)', () => {
  const { tracker: t, out, read, destroy } = tracker();
  read('', 1); // the first read after start: nothing yet
  destroy(flow('new', O, R, undefined, { start: 5_000_000_000 }), 5_000_000); // NEW is not asked for; one that comes is ignored
  read(flow(undefined, O, R, [10, 1000, 8, 500], { start: 5_000_000_000 }), 6_000_000);
  read(flow(undefined, O, R, [10, 1000, 8, 500], { start: 5_000_000_000 }), 7_000_000);
  destroy(flow('destroy', O, R, [15, 1600, 10, 620], { start: 5_000_000_000, stop: 8_000_000_000 }), 8_000_100);
  assert.equal(out.length, 2, 'nothing gained, nothing sent');
  const [live, end] = out as [FlowSample, FlowSample];
  assert.deepEqual(
    { ...live, flow_hi: 0 },
    {
      t: 6_000_000, flow_hi: 0, flow_lo: 1, vrouter: 'h1', vrouter_ip: ip('10.254.0.1'), other_vrouter_ip: ip('10.254.0.2'),
      sourcevn: 'd:p:red', destvn: 'd:p:red', sourceip: ip('10.1.0.10'), destip: ip('10.1.0.20'), protocol: 6, sport: 40000, dport: 80,
      direction_ing: 1, action: 'pass', nw_ace_uuid: 'allow-web', sg_rule_uuid: 'egress-all', setup_time: 5_000_000, teardown_time: null,
      bytes: 1000, packets: 10, reverse_bytes: 500, reverse_packets: 8, nat_sourceip: null, nat_destip: null, nat_sport: null, nat_dport: null,
    },
  );
  assert.deepEqual([end.t, end.teardown_time, end.bytes, end.packets, end.reverse_bytes, end.reverse_packets, end.flow_lo], [8_000_000, 8_000_000, 600, 5, 120, 2, 1]);
  assert.equal(t.size, 0);
});

test('a flow that ended before any read saw it: one sample from its DESTROY, with the kernel\'s start and stop', () => {
  const { tracker: t, out, destroy } = tracker();
  destroy(flow('destroy', O, R, [4, 216, 3, 165], { start: 5_000_000_123, stop: 5_000_400_999 }), 9_000_000);
  assert.deepEqual(out.map((s) => [s.setup_time, s.teardown_time, s.t, ...counters(s), s.sourcevn, s.direction_ing, s.flow_lo]), [[5_000_000, 5_000_400, 5_000_400, 216, 4, 165, 3, 'd:p:red', 1, 1]]);
  assert.equal(t.size, 0, 'nothing left to follow');
});

test('arriving from another host (direction 0), to a floating IP (NAT), outside Cirrus zones (ignored)', () => {
  const { out, destroy } = tracker();
  // From the remote workload to 10.1.0.99, which the host translates to the local port.
  destroy(flow('destroy', ['10.1.0.20', '10.1.0.99', 5000, 8080], ['10.1.0.10', '10.1.0.20', 80, 5000], [3, 180, 2, 120]), 9_000_000);
  destroy(flow('destroy', ['10.254.0.1', '10.254.0.201', 5000, 5269], ['10.254.0.201', '10.254.0.1', 5269, 5000], [3, 180, 2, 120], { zone: 0 }), 9_000_000);
  // The underlay's VXLAN packets in a network's zone: no workload's address at either end.
  destroy(flow('destroy', ['10.254.0.2', '10.254.0.1', 40338, 4789], ['10.254.0.1', '10.254.0.2', 4789, 40338], [3, 315, 0, 0]), 9_000_000);
  assert.equal(out.length, 1, 'the host\'s own connections are no workload\'s flows');
  const s = out[0]!;
  assert.deepEqual(
    [s.direction_ing, s.sourcevn, s.destvn, s.other_vrouter_ip, s.destip, s.nat_destip, s.nat_dport, s.nat_sourceip, s.nw_ace_uuid],
    [0, 'd:p:red', 'd:p:red', ip('10.254.0.2'), ip('10.1.0.99'), ip('10.1.0.10'), 80, null, 'allow-web'],
  );
});

test('a restarted agent takes the counters of flows that began before it as they are (its previous run reported them)', () => {
  const started = 100_000_000; // µs
  const { out, read } = tracker(started);
  const before = (sport: number, c: [number, number, number, number], start?: number) => flow(undefined, origOf(sport), replyOf(sport), c, start ? { start } : {});
  read(
    [
      before(40001, [100, 9000, 90, 5000], 99_000_000_000), // began before this run
      before(40002, [100, 9000, 90, 5000], 100_500_000_000), // began after: all of it is new
      before(40003, [100, 9000, 90, 5000]), // no kernel times: the first read is the baseline
    ].join('\n'),
    101_000_000,
  );
  read([before(40001, [110, 9900, 95, 5300]), before(40002, [110, 9900, 95, 5300]), before(40003, [110, 9900, 95, 5300])].join('\n'), 102_000_000);
  assert.deepEqual(out.map((s) => [s.sport, ...counters(s)]), [
    [40002, 9000, 100, 5000, 90],
    [40001, 900, 10, 300, 5],
    [40002, 900, 10, 300, 5],
    [40003, 900, 10, 300, 5],
  ]);
});

test('a DESTROY that comes while a read lists the flow is counted once; a flow gone from two reads without one is lost', () => {
  const { tracker: t, out } = tracker();
  const listed = entries(flow(undefined, O, R, [10, 1000, 8, 500], { start: 5_000_000_000 }))[0]!;
  const gone = entries(flow('destroy', O, R, [10, 1000, 8, 500], { start: 5_000_000_000, stop: 6_000_000_000 }))[0]!;
  t.beginRead();
  t.onEvent(gone, ctx, 6_000_100); // the listing was taken before the flow ended
  t.tableEntry(listed, ctx, 6_000_200);
  t.endRead();
  assert.deepEqual(out.map(counters), [[1000, 10, 500, 8]], 'one sample, from the DESTROY');
  assert.equal(t.size, 0);

  const other = (sport: number) => flow(undefined, origOf(sport), replyOf(sport), [1, 60, 1, 60], { start: 5_000_000_000, id: sport });
  const { tracker: t2, read, destroy } = tracker();
  read([other(41000), other(41001)].join('\n'), 7_000_000);
  read('', 8_000_000); // both missing once: their DESTROY may be on its way
  assert.deepEqual([t2.size, t2.lost], [2, 0]);
  destroy(flow('destroy', origOf(41000), replyOf(41000), [1, 60, 1, 60], { start: 5_000_000_000, stop: 7_500_000_000, id: 41000 }), 8_500_000);
  read('', 9_000_000);
  assert.deepEqual([t2.size, t2.lost], [0, 1], 'the one whose DESTROY never came is lost');
});

test('two flows sharing a conntrack id (ids are hashes, and reused) are kept apart', () => {
  const { tracker: t, out, read } = tracker();
  read(flow(undefined, O, R, [1, 60, 1, 60], { start: 5_000_000_000, id: 7 }), 6_000_000);
  read([flow(undefined, O, R, [1, 60, 1, 60], { start: 5_000_000_000, id: 7 }), flow(undefined, origOf(40100), replyOf(40100), [2, 120, 2, 120], { start: 6_500_000_000, id: 7 })].join('\n'), 7_000_000);
  assert.deepEqual(out.map((s) => [s.sport, s.flow_lo, ...counters(s)]), [[40000, 1, 60, 1, 60, 1], [40100, 2, 120, 2, 120, 2]]);
  assert.equal(t.size, 2);
});

test('denied packets: one sample per attempt and rule, the network from the packet mark', () => {
  const denied = new DeniedAttempts(7);
  const p = { t: 100, prefix: 'cirrus-deny p default', mark: 1_000_004, src: '10.1.0.10', dst: '10.9.9.9', proto: 6, sport: 40002, dport: 22, len: 60 };
  assert.ok(denied.add(p, ctx));
  assert.ok(denied.add({ ...p, t: 1_100_000 }, ctx), 'the retransmitted SYN');
  assert.ok(denied.add({ ...p, prefix: 'cirrus-deny s security groups', dport: 23 }, ctx));
  assert.equal(denied.add({ ...p, prefix: 'someone else' }, ctx), false);
  const out = denied.flush();
  assert.deepEqual(out.map((s) => [s.action, s.sourcevn, s.destvn, s.direction_ing, s.packets, s.bytes, s.setup_time, s.teardown_time, s.nw_ace_uuid, s.sg_rule_uuid]), [
    ['deny', 'd:p:red', '__UNKNOWN__', 1, 2, 120, 100, 1_100_000, 'default', null],
    ['deny', 'd:p:red', '__UNKNOWN__', 1, 1, 60, 100, 100, null, 'security groups'],
  ]);
  assert.deepEqual(denied.flush(), []);
});
