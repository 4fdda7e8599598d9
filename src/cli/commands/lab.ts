// cirrus lab: a multi-host fabric out of network namespaces on this machine (src/lab/).

import path from 'node:path';
import { type Command, CommanderError, InvalidArgumentError } from 'commander';
import { labDown } from '../../lab/down.js';
import { execIn, execTarget } from '../../lab/exec.js';
import { DEFAULT_LAB, FABRIC_BRIDGE, nameFlag } from '../../lab/layout.js';
import { type LabStatus, labStatus } from '../../lab/status.js';
import { DEMO_FILE, buildDemo } from '../../lab/demo.js';
import { labUp } from '../../lab/up.js';
import { addWorkload, delWorkload } from '../../lab/workloads.js';
import { contextOf } from '../context.js';
import { emit, printTable } from '../output.js';

interface NameOpt {
  name: string;
}

const nameOption = (c: Command): Command => c.option('--name <lab>', 'the lab ($CIRRUS_LAB sets the default)', process.env['CIRRUS_LAB'] ?? DEFAULT_LAB);

const integer = (text: string): number => {
  if (!/^\d{1,5}$/.test(text)) throw new InvalidArgumentError('not a number');
  return Number(text);
};

/** Progress goes to stderr: stdout carries the result (a table, or JSON with -o json). */
const say = (line: string): void => console.error(line);

export function labCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('a multi-host lab on this machine: host namespaces on an underlay, an agent in each, the server, workloads');

  nameOption(
    lab
      .command('up')
      .description('build the lab or repair what is missing: underlay, server (API on 127.0.0.1:PORT), two control nodes, one agent per host; waits until all answer')
      .requiredOption('--hosts <n>', 'number of hosts, named h1..hN', integer)
      .option('--api-port <port>', 'API port on 127.0.0.1 (default 8082, or the port the lab already has)', integer)
      .option('--analytics-port <port>', 'analytics API port on 127.0.0.1 (default 8081, or the port the lab already has)', integer)
      .option('--gateway', 'also a gateway host gw and an outside namespace behind it (`lab exec outside -- CMD`): external networks\' floating IPs are reached from there, SNAT networks leave through it')
      .option('--demo', 'also apply the demo topology, examples/demo.yaml: networks red and green joined by a pass-all policy, an HTTP server in service-1 (h1, red), client-1 (h2, red), green-1 (h2, green), a floating IP for service-1'),
  ).action(async (opts: NameOpt & { hosts: number; apiPort?: number; analyticsPort?: number; demo?: boolean; gateway?: boolean }, cmd: Command) => {
    const ctx = contextOf(cmd);
    const state = await labUp({ name: opts.name, hosts: opts.hosts, ...(opts.apiPort !== undefined ? { apiPort: opts.apiPort } : {}), ...(opts.analyticsPort !== undefined ? { analyticsPort: opts.analyticsPort } : {}), ...(opts.gateway ? { gateway: true } : {}) }, say);
    if (opts.demo) {
      say(`demo topology (${path.relative(process.cwd(), DEMO_FILE) || DEMO_FILE}):`);
      await buildDemo(ctx, state, say);
    }
    const status = await labStatus(state.name);
    if (ctx.output === 'json') return emit('json', status, [], []);
    console.log(`lab ${state.name} is up: ${state.hosts.length} host${state.hosts.length === 1 ? '' : 's'}${state.gateway ? `, gateway ${state.gateway.name} with the outside (${state.gateway.outsideNetns})` : ''} on a bridge in ${state.fabricNetns}, API on ${status.api}, analytics on ${status.analytics}`);
    printHosts(status);
    const n = nameFlag(state.name);
    if (opts.demo) {
      console.log(`
try:
  bin/cirrus lab exec client-1${n} -- ping -c 3 192.168.10.10          # same network, other host
  bin/cirrus lab exec client-1${n} -- curl -s 192.168.10.10/           # service-1's web server
  bin/cirrus lab exec green-1${n} -- curl -s 192.168.10.10/            # from green: the pass-all policy
  bin/cirrus lab exec client-1${n} -- getent hosts service-1            # the agent's DNS${
    state.gateway
      ? `
  bin/cirrus lab exec outside${n} -- curl -s 203.0.113.10/              # from outside: service-1's floating IP`
      : ''
  }
  bin/cirrus flows --since 10m   bin/cirrus top talkers                 # flow records (analytics on ${status.analytics})
  bin/cirrus trace client-1 service-1 --proto tcp --port 80             # why a flow passes
  export CIRRUS_API=${status.api}
  bin/cirrus port list        bin/cirrus policy show pass-all
  bin/cirrus apply -f examples/demo.yaml${n ? ` --lab ${state.name}` : ''} --dry-run   # edit the file, see the plan
  bin/cirrus lab status${n}        bin/cirrus lab down${n}`);
      return;
    }
    console.log(`
next:
  export CIRRUS_API=${status.api}
  bin/cirrus network create red --subnet 192.168.10.0/24
  bin/cirrus lab workload add w1 --host h1 --network red --ip 192.168.10.11${n}
  bin/cirrus lab workload add w2 --host h1 --network red --ip 192.168.10.12${n}
  bin/cirrus lab exec w1${n} -- ping -c 3 192.168.10.12${
    state.gateway
      ? `
  bin/cirrus network create public --subnet 203.0.113.0/24 --external
  bin/cirrus fip create --pool public --ip 203.0.113.10 --port w1
  bin/cirrus lab exec outside${n} -- ping -c 3 203.0.113.10      # the outside, through the gateway`
      : ''
  }
  bin/cirrus lab status${n}
  bin/cirrus lab down${n}`);
  });

  const workload = lab.command('workload').description('workloads: namespaces attached to a virtual network through a host\'s agent');
  nameOption(
    workload
      .command('add <workload> [command...]')
      .usage('[options] WORKLOAD [-- COMMAND [ARGS...]]')
      .description('create namespace WORKLOAD on a host and attach it to a network (as netns attach does); prints its address. COMMAND: a program kept running in it (stopped with the workload)')
      .requiredOption('--host <host>', 'the host whose agent plumbs it (h1..hN)')
      .requiredOption('--network <network>', 'the network (NAME, DOMAIN:PROJECT:NAME or uuid) in the lab\'s API')
      .option('--ip <address>', 'a fixed address instead of an allocated one')
      .option('--dhcp', "configure only the link: the workload's own DHCP client gets the address (e.g. lab exec W -- dhclient -sf lib/dhclient-script eth0)"),
  ).action(async (name: string, command: string[], opts: NameOpt & { host: string; network: string; ip?: string; dhcp?: boolean }, cmd: Command) => {
    const ctx = contextOf(cmd);
    const w = await addWorkload(ctx, opts.name, { name, host: opts.host, network: opts.network, ...(opts.ip ? { ip: opts.ip } : {}), ...(opts.dhcp ? { dhcp: true } : {}), command });
    if (ctx.output === 'json') return emit('json', w, [], []);
    const how = w.dhcp ? `link only (DHCP will give ${w.address}/${w.prefixLen})` : `${w.address}/${w.prefixLen}`;
    console.log(`workload ${w.name} on ${w.host}: eth0 ${how} in ${w.network}, mac ${w.mac}, host end ${w.hostIf}`);
    if (w.process) console.log(`running ${w.command!.join(' ')} (pid ${w.process.pid}, output in ${w.process.log})`);
  });
  nameOption(
    workload
      .command('del <workload>')
      .description('detach the workload (as netns detach does) and delete its namespace'),
  ).action(async (name: string, opts: NameOpt, cmd: Command) => {
    const ctx = contextOf(cmd);
    const w = await delWorkload(ctx, opts.name, name);
    if (ctx.output === 'json') console.log(JSON.stringify({ deleted: w.name }));
    else console.log(`workload ${w.name} deleted (was on ${w.host} in ${w.network})`);
  });

  nameOption(
    lab
      .command('exec <target> [command...]')
      .usage('[--name LAB] TARGET -- COMMAND [ARGS...]')
      .description('run COMMAND in workload TARGET, or in host TARGET (h1..hN), e.g. cirrus lab exec w1 -- ping -c 1 ADDRESS; exits with its status'),
  ).action(async (target: string, argv: string[], opts: NameOpt) => {
    const code = await execIn(execTarget(opts.name, target), argv);
    // main() turns a CommanderError into the process's exit code.
    if (code !== 0) throw new CommanderError(code, 'cirrus.lab.exec', '');
  });

  nameOption(lab.command('status').description('control nodes and hosts (namespace, underlay address, process and its health), the server, workloads')).action(
    async (opts: NameOpt, cmd: Command) => {
      const ctx = contextOf(cmd);
      const s = await labStatus(opts.name);
      if (ctx.output === 'json') return emit('json', s, [], []);
      console.log(`lab ${s.name} (state in ${s.dir})`);
      console.log(`server: ${s.server.running ? `pid ${s.server.pid}` : 'not running'}, API ${s.api}: ${s.server.health}`);
      console.log(`collector: ${s.collector.running ? `pid ${s.collector.pid}` : 'not running'}, analytics ${s.analytics ?? '-'}: ${s.collector.health}`);
      console.log(`fabric: ${s.fabric.netns}${s.fabric.present ? '' : ' (missing)'}, bridge ${FABRIC_BRIDGE}`);
      printHosts(s);
      if (s.workloads.length) {
        console.log('');
        printTable(
          s.workloads.map((w) => ({ ...w, name: w.present ? w.name : `${w.name} (missing)`, host_if: w.host_ifname })),
          ['name', 'host', 'network', 'address', 'mac', 'host_if', 'status'],
        );
      }
    },
  );

  nameOption(lab.command('down').description('remove every namespace, link and process the lab made, and its directory (also after a crash)')).action(
    async (opts: NameOpt, cmd: Command) => {
      const ctx = contextOf(cmd);
      const r = await labDown(opts.name, say);
      if (ctx.output === 'json') return emit('json', r, [], []);
      if (!r.processes.length && !r.namespaces.length) console.log(`lab ${opts.name}: nothing to remove`);
      else console.log(`lab ${opts.name} removed (${r.processes.filter((p) => p.result !== 'not running').length} processes stopped, ${r.namespaces.length} namespaces deleted)`);
    },
  );
}

function printHosts(s: LabStatus): void {
  const row = (name: string, netns: string, present: boolean, underlay: string, role: string, p: LabStatus['server']) =>
    ({ host: name, namespace: present ? netns : `${netns} (missing)`, underlay, role, pid: p.running ? p.pid : null, health: p.health });
  printTable(
    [...s.controls.map((c) => row(c.name, c.netns, c.present, c.underlay, 'control', c.process)), ...s.hosts.map((h) => row(h.name, h.netns, h.present, h.underlay, 'agent', h.agent))],
    ['host', 'namespace', 'underlay', 'role', 'pid', 'health'],
  );
}
