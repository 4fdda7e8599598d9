// From conntrack's XML to flow samples: parsing, the network context of each end (local
// port, remote workload and its host, zone), counters per table read and at teardown, NAT,
// the deciding rules, entries that are not Cirrus's; denied packets summed per attempt.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlowSample } from '../../src/analytics/schema.js';
import { parseFlows } from '../../src/agent/flows/conntrack.js';
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

test('conntrack XML: flows parsed, a cut element kept for the next chunk, non-IPv4 skipped', () => {
  const whole = flow('new', ['10.1.0.10', '10.1.0.20', 40000, 80], ['10.1.0.20', '10.1.0.10', 80, 40000]);
  const { entries, rest } = parseFlows(`<?xml version="1.0"?><conntrack>${whole}${whole.slice(0, 50)}`);
  assert.equal(entries.length, 1);
  assert.deepEqual([entries[0]!.event, entries[0]!.zone, entries[0]!.protocol, entries[0]!.orig.dport], ['new', ZONE, 6, 80]);
  assert.equal(rest, whole.slice(0, 50));
  assert.equal(parseFlows(whole.replace(/10\.1\.0\.10/g, 'fe80::1')).entries.length, 0);
});

test('a flow across hosts: NEW, then a table read (what it gained), then DESTROY (the rest, with the teardown time)', () => {
  const out: FlowSample[] = [];
  const tracker = new FlowTracker((s) => out.push(...s));
  const o: [string, string, number, number] = ['10.1.0.10', '10.1.0.20', 40000, 80];
  const r: [string, string, number, number] = ['10.1.0.20', '10.1.0.10', 80, 40000];
  tracker.onTable([], ctx, 1); // the first read after start: nothing yet
  tracker.onEvents(parseFlows(flow('new', o, r, undefined, { start: 5_000_000_000 })).entries, ctx, 5_000_000);
  tracker.onTable(parseFlows(flow(undefined, o, r, [10, 1000, 8, 500], { start: 5_000_000_000 })).entries, ctx, 6_000_000);
  tracker.onTable(parseFlows(flow(undefined, o, r, [10, 1000, 8, 500], { start: 5_000_000_000 })).entries, ctx, 7_000_000);
  tracker.onEvents(parseFlows(flow('destroy', o, r, [15, 1600, 10, 620], { start: 5_000_000_000, stop: 8_000_000_000 })).entries, ctx, 8_000_100);
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
  assert.equal(tracker.size, 0);
});

test('arriving from another host (direction 0), to a floating IP (NAT), outside Cirrus zones (ignored)', () => {
  const out: FlowSample[] = [];
  const tracker = new FlowTracker((s) => out.push(...s));
  // From the remote workload to 10.1.0.99, which the host translates to the local port.
  tracker.onEvents(parseFlows(flow('destroy', ['10.1.0.20', '10.1.0.99', 5000, 8080], ['10.1.0.10', '10.1.0.20', 80, 5000], [3, 180, 2, 120])).entries, ctx, 9_000_000);
  tracker.onEvents(parseFlows(flow('destroy', ['10.254.0.1', '10.254.0.201', 5000, 5269], ['10.254.0.201', '10.254.0.1', 5269, 5000], [3, 180, 2, 120], { zone: 0 })).entries, ctx, 9_000_000);
  assert.equal(out.length, 1, 'the host\'s own connection is no workload\'s flow');
  const s = out[0]!;
  assert.deepEqual(
    [s.direction_ing, s.sourcevn, s.destvn, s.other_vrouter_ip, s.destip, s.nat_destip, s.nat_dport, s.nat_sourceip, s.nw_ace_uuid],
    [0, 'd:p:red', 'd:p:red', ip('10.254.0.2'), ip('10.1.0.99'), ip('10.1.0.10'), 80, null, 'allow-web'],
  );
});

test('a restarted agent takes the counters of flows it finds as they are (its previous run reported them)', () => {
  const out: FlowSample[] = [];
  const tracker = new FlowTracker((s) => out.push(...s));
  const o: [string, string, number, number] = ['10.1.0.10', '10.1.0.20', 40001, 80];
  const r: [string, string, number, number] = ['10.1.0.20', '10.1.0.10', 80, 40001];
  tracker.onTable(parseFlows(flow(undefined, o, r, [100, 9000, 90, 5000])).entries, ctx, 1_000_000);
  tracker.onTable(parseFlows(flow(undefined, o, r, [110, 9900, 95, 5300])).entries, ctx, 2_000_000);
  assert.deepEqual(out.map((s) => [s.bytes, s.packets, s.reverse_bytes, s.reverse_packets]), [[900, 10, 300, 5]]);
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
