// The CLI's verbs against the real server: tables for people, -o json for scripts,
// one-line errors and a non-zero exit.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CIRRUS, type RunningServer, runCli, startServer } from '../support/server.js';

const run = promisify(execFile);
let srv: RunningServer;

before(async () => {
  srv = await startServer();
});
after(async () => srv?.cleanup());

const cirrus = (...args: string[]) => runCli(srv.url, ...args);

test('network, policy and port verbs', async () => {
  const red = await cirrus('network', 'create', 'red', '--subnet', '192.168.10.0/24');
  assert.equal(red.code, 0, red.stderr);
  assert.match(red.stdout, /default-domain:admin:red\s+[0-9a-f-]{36}\s+\d+\s+192\.168\.10\.0\/24\s+192\.168\.10\.1/);
  assert.equal((await cirrus('network', 'create', 'green', '--subnet', '192.168.20.0/24', '--vni', '20')).code, 0);

  const pol = await cirrus('policy', 'create', 'red-green', '--rule', 'pass tcp red > green 80', '--rule', 'pass icmp red <> green');
  assert.equal(pol.code, 0, pol.stderr);
  assert.equal((await cirrus('policy', 'attach', 'red-green', '--network', 'red')).code, 0);
  assert.equal((await cirrus('policy', 'attach', 'red-green', '--network', 'green')).code, 0);
  const show = await cirrus('policy', 'show', 'red-green');
  assert.match(show.stdout, /1\. pass tcp default-domain:admin:red > default-domain:admin:green 80/);
  assert.match(show.stdout, /networks\s+red, green/);

  const port = await cirrus('-o', 'json', 'port', 'create', '--network', 'red', '--vm', 'web1');
  assert.equal(port.code, 0, port.stderr);
  const created = JSON.parse(port.stdout);
  assert.equal(created.instance_ips[0].instance_ip_address, '192.168.10.3');
  assert.match(created.virtual_machine_interface_mac_addresses.mac_address[0], /^02:/);
  const fixed = await cirrus('port', 'create', '--network', 'red', '--ip', '192.168.10.50', '--name', 'fixed');
  assert.equal(fixed.code, 0, fixed.stderr);
  const list = await cirrus('port', 'list');
  assert.match(list.stdout, /web1-red .* red\s+192\.168\.10\.3 .* web1/);
  assert.match(list.stdout, /fixed .* 192\.168\.10\.50/);
  const nets = JSON.parse((await cirrus('-o', 'json', 'network', 'list')).stdout);
  assert.deepEqual(nets.map((n: { fq_name: string[] }) => n.fq_name.at(-1)).sort(), ['green', 'red']);

  assert.equal((await cirrus('port', 'delete', 'web1-red')).code, 0);
  assert.equal((await cirrus('port', 'delete', 'fixed')).code, 0);
  assert.equal((await cirrus('policy', 'detach', 'red-green', '--network', 'red')).code, 0);
  assert.equal((await cirrus('policy', 'detach', 'red-green', '--network', 'green')).code, 0);
  assert.equal((await cirrus('policy', 'delete', 'red-green')).code, 0);
  assert.equal((await cirrus('network', 'delete', 'red')).code, 0);
  assert.equal((await cirrus('network', 'delete', 'green')).code, 0);
  assert.match((await cirrus('network', 'list')).stdout.trim(), /^NAME\s+UUID/);
});

test('security group verbs: create with rules, add rules, attach to a port, show, detach, delete', async () => {
  assert.equal((await cirrus('network', 'create', 'blue', '--subnet', '192.168.30.0/24')).code, 0);
  assert.equal((await cirrus('port', 'create', '--network', 'blue', '--name', 'db1')).code, 0);
  const web = await cirrus('sg', 'create', 'web', '--rule', 'ingress tcp any 80', '--rule', 'egress any any');
  assert.equal(web.code, 0, web.stderr);
  assert.match(web.stdout, /default-domain:admin:web\s+[0-9a-f-]{36}\s+2\s+0/);
  assert.equal((await cirrus('sg', 'create', 'db')).code, 0, 'a group without rules');
  const added = await cirrus('sg', 'rule', 'add', 'db', 'ingress tcp web 5432', 'egress udp 10.0.0.0/8 53');
  assert.equal(added.code, 0, added.stderr);
  const attached = await cirrus('sg', 'attach', 'db', '--port', 'db1');
  assert.equal(attached.code, 0, attached.stderr);
  assert.match(attached.stdout, /attached group default-domain:admin:db to port default-domain:admin:db1/);
  const show = await cirrus('sg', 'show', 'db');
  assert.match(show.stdout, /ports\s+1/);
  assert.match(show.stdout, /1\. ingress tcp default-domain:admin:web 5432\n\s+2\. egress udp 10\.0\.0\.0\/8 53/);
  const bad = await cirrus('sg', 'rule', 'add', 'db', 'ingress gre any');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /protocol 'gre' is not any, tcp, udp, icmp or 0-255/);
  assert.equal((await cirrus('sg', 'show', 'db')).stdout.match(/^\s+\d+\./gm)?.length, 2, 'a refused rule changes nothing');
  assert.equal((await cirrus('sg', 'detach', 'db', '--port', 'db1')).code, 0);
  for (const g of ['db', 'web']) assert.equal((await cirrus('sg', 'delete', g)).code, 0);
  assert.equal((await cirrus('port', 'delete', 'db1')).code, 0);
  assert.equal((await cirrus('network', 'delete', 'blue')).code, 0);
});

test('errors are one readable line with a non-zero exit, and leave nothing behind', async () => {
  assert.equal((await cirrus('network', 'create', 'blue', '--subnet', '10.9.0.0/24')).code, 0);
  const cases: [string[], RegExp][] = [
    [['network', 'create', 'bad', '--subnet', '10.0.0.1/24'], /host bits set/],
    [['network', 'create', 'bad', '--subnet', 'nonsense'], /--subnet: 'nonsense' is not a CIDR/],
    [['network', 'create', 'blue', '--subnet', '10.9.1.0/24'], /already exists \(HTTP 409\)/],
    [['network', 'show', 'nope'], /virtual-network default-domain:admin:nope does not exist/],
    [['policy', 'create', 'p', '--rule', 'pass tcp a -> b'], /direction '->' is not > or <>/],
    [['port', 'create', '--network', 'blue', '--ip', '10.9.0.1'], /is reserved/],
    [['-o', 'yaml', 'network', 'list'], /-o: 'yaml' is not table or json/],
  ];
  for (const [args, why] of cases) {
    const r = await cirrus(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, why, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  const ports = JSON.parse((await cirrus('-o', 'json', 'port', 'list')).stdout);
  assert.deepEqual(ports, [], 'the failed port create was rolled back');
  const unreachable = await run(process.execPath, [CIRRUS, 'network', 'list'], { env: { ...process.env, CIRRUS_API: 'http://127.0.0.1:1' } }).catch((e) => e);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach the Cirrus API at http:\/\/127\.0\.0\.1:1/);
});
