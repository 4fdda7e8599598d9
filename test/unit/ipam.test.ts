import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Allocator } from '../../src/ipam/allocator.js';
import { completeIpamRefs, subnetsOf } from '../../src/ipam/subnets.js';
import type { StoredObject } from '../../src/config/object.js';
import { ApiError } from '../../src/config/errors.js';

const ipamRef = (...subnets: Record<string, unknown>[]) => [{ uuid: 'ipam', attr: { ipam_subnets: subnets } }];
const sub = (prefix: string, len: number, extra: Record<string, unknown> = {}) => ({ subnet: { ip_prefix: prefix, ip_prefix_len: len }, ...extra });
const network = (refs: ReturnType<typeof ipamRef>): StoredObject => ({
  type: 'virtual-network',
  uuid: 'vn',
  fq_name: ['d', 'p', 'vn'],
  props: {},
  refs: { network_ipam_refs: completeIpamRefs(refs, 'f') },
});

test('TF conventions: gateway .254 and DNS .253, or .1/.2 with addr_from_start', () => {
  const [ref] = completeIpamRefs(ipamRef(sub('192.168.10.0', 24), sub('10.0.0.0', 16, { addr_from_start: true })), 'f');
  const [a, b] = (ref!.attr as { ipam_subnets: Record<string, unknown>[] }).ipam_subnets;
  assert.equal(a!['default_gateway'], '192.168.10.254');
  assert.equal(a!['dns_server_address'], '192.168.10.253');
  assert.equal(a!['enable_dhcp'], true);
  assert.match(a!['subnet_uuid'] as string, /^[0-9a-f-]{36}$/);
  assert.equal(b!['default_gateway'], '10.0.0.1');
  assert.equal(b!['dns_server_address'], '10.0.0.2');
});

test('subnet validation errors name the field', () => {
  const cases: [Record<string, unknown>, number, RegExp][] = [
    [sub('192.168.10.1', 24), 400, /f\[0\]\.attr\.ipam_subnets\[0\]\.subnet: .*host bits/],
    [sub('300.0.0.0', 24), 400, /ip_prefix: '300\.0\.0\.0' is not an IPv4 address/],
    [sub('fd00::', 64), 400, /IPv6 subnets are not supported yet/],
    [sub('10.0.0.0', 30), 400, /too small/],
    [sub('10.0.0.0', 24, { default_gateway: '10.0.1.1' }), 400, /default_gateway: 10\.0\.1\.1 is outside 10\.0\.0\.0\/24/],
    [sub('10.0.0.0', 24, { default_gateway: '10.0.0.255' }), 400, /broadcast/],
    [sub('10.0.0.0', 24, { default_gateway: '10.0.0.9', dns_server_address: '10.0.0.9' }), 400, /also the gateway/],
    [sub('10.0.0.0', 24, { allocation_pools: [{ start: '10.0.0.50', end: '10.0.0.10' }] }), 400, /is after end/],
  ];
  for (const [s, status, why] of cases) {
    assert.throws(() => completeIpamRefs(ipamRef(s), 'f'), (e: ApiError) => e.status === status && why.test(e.message), JSON.stringify(s));
  }
  assert.throws(
    () => completeIpamRefs(ipamRef(sub('10.0.0.0', 16), sub('10.0.5.0', 24)), 'f'),
    (e: ApiError) => e.status === 409 && /overlaps 10\.0\.0\.0\/16/.test(e.message),
  );
});

test('allocation runs from the end by default, from the start with addr_from_start, skipping reserved and taken', () => {
  const taken = new Set<string>();
  const alloc = new Allocator();
  const [down] = subnetsOf(network(ipamRef(sub('192.168.10.0', 24))));
  const got = [alloc.allocate(down!, (a) => taken.has(a)), alloc.allocate(down!, (a) => taken.has(a))];
  assert.deepEqual(got, ['192.168.10.252', '192.168.10.251']);
  const [up] = subnetsOf(network(ipamRef(sub('10.1.0.0', 24, { addr_from_start: true }))));
  taken.add('10.1.0.3');
  assert.equal(alloc.allocate(up!, (a) => taken.has(a)), '10.1.0.4');
});

test('allocation honours pools (skipping gateway .1 and DNS .2 inside them) and reports exhaustion', () => {
  const [s] = subnetsOf(network(ipamRef(sub('10.2.0.0', 24, { addr_from_start: true, allocation_pools: [{ start: '10.2.0.1', end: '10.2.0.4' }] }))));
  const taken = new Set<string>();
  const alloc = new Allocator();
  for (const want of ['10.2.0.3', '10.2.0.4']) {
    const a = alloc.allocate(s!, (x) => taken.has(x))!;
    assert.equal(a, want);
    taken.add(a);
  }
  assert.equal(alloc.allocate(s!, (x) => taken.has(x)), undefined);
  taken.delete('10.2.0.3');
  assert.equal(alloc.allocate(s!, (x) => taken.has(x)), '10.2.0.3', 'a freed address is found again after wrapping');
});
