// Benchmark of the config API's hot write path: creating ports. A port is what an
// orchestrator creates per workload interface: a virtual-machine, a virtual-machine-
// interface in a network, and an instance-ip allocated from the network's subnet. The
// three creates of a port run in sequence; `--concurrency` ports are in flight at once,
// each worker on its own keep-alive connection.
//
// The same load shape against GET /healthz of the same server is the baseline: the
// floor of this machine, Node and Fastify, so the figures can be read as a ratio.
// The load generator runs on the same machine as the server and competes for its CPUs.
//
//   node dist/bench/ports.js [--ports 10000] [--concurrency 32] [--warmup 500] [--json]
//                            [--url http://host:port] [--server-node-arg --cpu-prof ...]

import os from 'node:os';
import { parseArgs } from 'node:util';
import { cpuSeconds, machineCpuSeconds } from './support/cpu.js';
import { JsonClient, expectOk } from './support/http.js';
import { type RunningServer, startServer } from '../test/support/server.js';
import { type LatencySummary, Samples } from './support/stats.js';

/** The target of the issue, on a 2-core machine with the load generator alongside. */
const TARGET = { portsPerSecond: 2000, p99Ms: 20 };

const PROJECT = ['default-domain', 'admin'];
const IPAM = [...PROJECT, 'default-network-ipam'];

interface Options {
  ports: number;
  concurrency: number;
  warmup: number;
  json: boolean;
  url: string | undefined;
  serverNodeArgs: string[];
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      ports: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '32' },
      warmup: { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
      url: { type: 'string' },
      'server-node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node dist/bench/ports.js [--ports N] [--concurrency C] [--warmup W] [--json]\n' +
        '                                [--url URL (use a running server)] [--server-node-arg ARG]...',
    );
    process.exit(0);
  }
  const count = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: '${text}' is not an integer ≥ ${min}`);
    return n;
  };
  return {
    ports: count('ports', values.ports, 1),
    concurrency: count('concurrency', values.concurrency, 1),
    warmup: count('warmup', values.warmup, 0),
    json: values.json,
    url: values.url,
    serverNodeArgs: values['server-node-arg'],
  };
}

interface Phase {
  seconds: number;
  /** CPU seconds the server spent (undefined with --url: not our process). */
  serverCpu: number | undefined;
  clientCpu: number;
  /** CPU seconds of the whole machine (undefined off Linux). */
  machineCpu: number | undefined;
}

/** Runs `total` jobs with `concurrency` workers, each taking the next job when done. */
async function runWorkers(total: number, concurrency: number, job: (i: number) => Promise<void>, serverPid?: number): Promise<Phase> {
  let next = 0;
  const server0 = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  const client0 = process.cpuUsage();
  const machine0 = machineCpuSeconds();
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const server1 = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  const machine1 = machineCpuSeconds();
  return {
    seconds,
    serverCpu: server0 === undefined || server1 === undefined ? undefined : server1 - server0,
    clientCpu: (client.user + client.system) / 1e6,
    machineCpu: machine0 === undefined || machine1 === undefined ? undefined : machine1 - machine0,
  };
}

/** CPU µs per request of server and load generator, and the cores each kept busy. */
function cpuPerRequest(p: Phase, requests: number): CpuFigures {
  return {
    serverUsPerRequest: p.serverCpu === undefined ? null : (p.serverCpu * 1e6) / requests,
    serverCores: p.serverCpu === undefined ? null : p.serverCpu / p.seconds,
    clientUsPerRequest: (p.clientCpu * 1e6) / requests,
    clientCores: p.clientCpu / p.seconds,
    otherCores:
      p.machineCpu === undefined || p.serverCpu === undefined ? null : Math.max(0, (p.machineCpu - p.serverCpu - p.clientCpu) / p.seconds),
  };
}

/** A subnet with room for every port of the run (network, broadcast, gateway, DNS aside). */
function subnetFor(addresses: number): { ip_prefix: string; ip_prefix_len: number } {
  let len = 24;
  while (len > 8 && 2 ** (32 - len) - 4 < addresses) len--;
  return { ip_prefix: '10.0.0.0', ip_prefix_len: Math.min(len, 16) };
}

interface PortLatencies {
  all: Samples;
  vm: Samples;
  vmi: Samples;
  iip: Samples;
}

/** Creates port `i`: virtual-machine, then its interface, then its instance-ip. */
async function createPort(client: JsonClient, run: string, network: string, i: number, lat?: PortLatencies): Promise<void> {
  const create = async (type: string, body: Record<string, unknown>, samples: Samples | undefined): Promise<string> => {
    const a = await client.request('POST', `/${type}s`, { [type]: body });
    lat?.all.add(a.ms);
    samples?.add(a.ms);
    return expectOk(`POST /${type}s (port ${i})`, a)[type].uuid as string;
  };
  const vm = await create('virtual-machine', { fq_name: [`${run}-vm-${i}`] }, lat?.vm);
  const vmi = await create(
    'virtual-machine-interface',
    {
      fq_name: [...PROJECT, `${run}-vmi-${i}`],
      parent_type: 'project',
      virtual_network_refs: [{ uuid: network }],
      virtual_machine_refs: [{ uuid: vm }],
    },
    lat?.vmi,
  );
  await create(
    'instance-ip',
    { fq_name: [`${run}-iip-${i}`], virtual_network_refs: [{ uuid: network }], virtual_machine_interface_refs: [{ uuid: vmi }] },
    lat?.iip,
  );
}

/** Every instance-ip of the network has an address of its own; throws otherwise. */
async function verifyAddresses(client: JsonClient, network: string, expected: number): Promise<{ instanceIps: number; distinct: number }> {
  const body = expectOk('GET /instance-ips?detail=True', await client.request('GET', '/instance-ips?detail=True'));
  const items = (body['instance-ips'] as { 'instance-ip': Record<string, any> }[]).map((e) => e['instance-ip']);
  const ours = items.filter((o) => (o['virtual_network_refs'] as { uuid: string }[] | undefined)?.some((r) => r.uuid === network));
  const addresses = ours.map((o) => o['instance_ip_address'] as string | undefined);
  const missing = addresses.filter((a) => !a).length;
  const distinct = new Set(addresses.filter((a) => a)).size;
  const problems: string[] = [];
  if (ours.length !== expected) problems.push(`expected ${expected} instance-ips in the network, found ${ours.length}`);
  if (missing) problems.push(`${missing} instance-ips have no address`);
  if (distinct !== ours.length - missing) problems.push(`${ours.length - missing - distinct} addresses are allocated more than once`);
  if (problems.length) throw new Error(`VERIFICATION FAILED: ${problems.join('; ')}`);
  return { instanceIps: ours.length, distinct };
}

interface CpuFigures {
  serverUsPerRequest: number | null;
  /** CPU seconds per second: 1 = one core busy (all threads of the process count). */
  serverCores: number | null;
  clientUsPerRequest: number;
  clientCores: number;
  /**
   * Cores busy with everything else (other processes, the kernel's share of loopback
   * traffic not charged to either side): on a shared machine, a sign of a disturbed run.
   */
  otherCores: number | null;
}

interface Report {
  ports: number;
  concurrency: number;
  warmupPorts: number;
  seconds: number;
  portsPerSecond: number;
  creationsPerSecond: number;
  createLatencyMs: LatencySummary;
  byType: Record<'virtual-machine' | 'virtual-machine-interface' | 'instance-ip', LatencySummary>;
  cpu: CpuFigures;
  baseline: { requests: number; seconds: number; requestsPerSecond: number; latencyMs: LatencySummary; cpu: CpuFigures };
  /** Create ÷ healthz; serverCpu compares the server's CPU per request (null with --url). */
  ratios: { throughput: number; p50: number; p99: number; serverCpu: number | null };
  verified: { instanceIps: number; distinctAddresses: number };
  target: { portsPerSecond: number; p99Ms: number; met: boolean };
  machine: { cpus: number; cpuModel: string; node: string; platform: string; loadGenerator: string };
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  let server: RunningServer | undefined;
  const stopServer = async () => {
    const s = server;
    server = undefined;
    await s?.cleanup();
  };
  // An interrupted run still stops its server and removes its data directory.
  const onSignal = () => void stopServer().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let client: JsonClient | undefined;
  try {
    if (opts.url) log(`using the server at ${opts.url}`);
    else {
      server = await startServer(undefined, [], opts.serverNodeArgs);
      log(`server pid ${server.proc.pid} on ${server.url}`);
    }
    const base = opts.url ?? server!.url;
    client = new JsonClient(base, opts.concurrency);
    // Names unique to this run, so that --url can point at a server used before.
    const run = `b${Date.now().toString(36)}`;
    const total = opts.warmup + opts.ports;

    const network = expectOk('POST /virtual-networks', await client.request('POST', '/virtual-networks', {
      'virtual-network': {
        fq_name: [...PROJECT, opts.url ? `bench-${run}` : 'bench'],
        parent_type: 'project',
        network_ipam_refs: [{ to: IPAM, attr: { ipam_subnets: [{ subnet: subnetFor(total) }] } }],
      },
    }))['virtual-network'].uuid as string;

    // Warm-up (JIT, connection pool, SQLite page cache): not measured, but verified.
    if (opts.warmup) {
      log(`warm-up: ${opts.warmup} ports and ${3 * opts.warmup} GET /healthz`);
      await runWorkers(3 * opts.warmup, opts.concurrency, async () => void expectOk('GET /healthz', await client!.request('GET', '/healthz')));
      await runWorkers(opts.warmup, opts.concurrency, (i) => createPort(client!, run, network, i));
    }

    const baselineRequests = 3 * opts.ports;
    log(`baseline: ${baselineRequests} GET /healthz, ${opts.concurrency} in flight`);
    const healthz = new Samples(baselineRequests);
    const baselinePhase = await runWorkers(baselineRequests, opts.concurrency, async () => {
      const a = await client!.request('GET', '/healthz');
      expectOk('GET /healthz', a);
      healthz.add(a.ms);
    }, server?.proc.pid);
    const baselineSeconds = baselinePhase.seconds;

    log(`ports: ${opts.ports} (3 creates each), ${opts.concurrency} in flight`);
    const lat: PortLatencies = { all: new Samples(3 * opts.ports), vm: new Samples(opts.ports), vmi: new Samples(opts.ports), iip: new Samples(opts.ports) };
    const createPhase = await runWorkers(opts.ports, opts.concurrency, (i) => createPort(client!, run, network, opts.warmup + i, lat), server?.proc.pid);
    const seconds = createPhase.seconds;

    log('verifying the allocated addresses');
    const verified = await verifyAddresses(client, network, total);

    const create = lat.all.summary();
    const floor = healthz.summary();
    const portsPerSecond = opts.ports / seconds;
    const baselineRps = baselineRequests / baselineSeconds;
    const createCpu = cpuPerRequest(createPhase, 3 * opts.ports);
    const baselineCpu = cpuPerRequest(baselinePhase, baselineRequests);
    const report: Report = {
      ports: opts.ports,
      concurrency: opts.concurrency,
      warmupPorts: opts.warmup,
      seconds,
      portsPerSecond,
      creationsPerSecond: (3 * opts.ports) / seconds,
      createLatencyMs: create,
      byType: { 'virtual-machine': lat.vm.summary(), 'virtual-machine-interface': lat.vmi.summary(), 'instance-ip': lat.iip.summary() },
      cpu: createCpu,
      baseline: { requests: baselineRequests, seconds: baselineSeconds, requestsPerSecond: baselineRps, latencyMs: floor, cpu: baselineCpu },
      ratios: {
        throughput: (3 * opts.ports) / seconds / baselineRps,
        p50: create.p50 / floor.p50,
        p99: create.p99 / floor.p99,
        serverCpu: createCpu.serverUsPerRequest === null || baselineCpu.serverUsPerRequest === null ? null : createCpu.serverUsPerRequest / baselineCpu.serverUsPerRequest,
      },
      verified: { instanceIps: verified.instanceIps, distinctAddresses: verified.distinct },
      target: { ...TARGET, met: portsPerSecond >= TARGET.portsPerSecond && create.p99 < TARGET.p99Ms },
      machine: {
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        loadGenerator: 'same machine (one Node process, node:http keep-alive)',
      },
    };
    console.log(table(report));
    if (opts.json) console.log(JSON.stringify(report));
  } finally {
    client?.close();
    await stopServer();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function table(r: Report): string {
  const f = (n: number, digits = 2) => n.toFixed(digits);
  const row = (name: string, s: LatencySummary) =>
    `  ${name.padEnd(28)}${f(s.p50).padStart(8)}${f(s.p90).padStart(8)}${f(s.p99).padStart(8)}${f(s.max).padStart(9)}`;
  return [
    `Config API: port creation (${r.ports} ports, ${r.concurrency} in flight, ${r.warmupPorts} warm-up ports)`,
    `machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}; load generator on the same machine`,
    '',
    `  ports/s                     ${f(r.portsPerSecond, 0).padStart(8)}   (target ≥ ${r.target.portsPerSecond})`,
    `  creations/s                 ${f(r.creationsPerSecond, 0).padStart(8)}`,
    `  GET /healthz req/s          ${f(r.baseline.requestsPerSecond, 0).padStart(8)}   (baseline, same load shape)`,
    `  creations/s ÷ healthz req/s ${f(r.ratios.throughput).padStart(8)}`,
    '',
    `  latency (ms)                     p50     p90     p99      max`,
    row('creates (all)', r.createLatencyMs),
    row('  virtual-machine', r.byType['virtual-machine']),
    row('  virtual-machine-interface', r.byType['virtual-machine-interface']),
    row('  instance-ip', r.byType['instance-ip']),
    row('GET /healthz (baseline)', r.baseline.latencyMs),
    `  create ÷ healthz            ${f(r.ratios.p50).padStart(8)}${''.padStart(8)}${f(r.ratios.p99).padStart(8)}`,
    '',
    `  CPU per request (µs)          server   client   (cores busy: server, client, rest of machine)`,
    cpuRow('creates', r.cpu),
    cpuRow('GET /healthz (baseline)', r.baseline.cpu),
    `  create ÷ healthz            ${(r.ratios.serverCpu === null ? '-' : f(r.ratios.serverCpu)).padStart(8)}`,
    '',
    `  verified: ${r.verified.instanceIps} instance-ips, ${r.verified.distinctAddresses} distinct addresses`,
    `  target (≥ ${r.target.portsPerSecond} ports/s, p99 < ${r.target.p99Ms} ms): ${r.target.met ? 'MET' : 'NOT MET'}`,
  ].join('\n');
}

function cpuRow(name: string, c: CpuFigures): string {
  const n = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));
  return `  ${name.padEnd(28)}${n(c.serverUsPerRequest, 0).padStart(8)}${n(c.clientUsPerRequest, 0).padStart(9)}   (${n(c.serverCores, 2)}, ${n(c.clientCores, 2)}, ${n(c.otherCores, 2)})`;
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
