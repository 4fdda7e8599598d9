// One benchmark report: every data path side by side, measured in the same run on one
// machine, with the ratio of each figure to a kernel VXLAN path built by hand, plus the
// control plane's headline figures from quick runs of the other benchmarks. Writes the
// generated block of docs/benchmarks.md and its chart (docs/benchmarks-report.svg).
//
//   npm run bench                              (as root; = node dist/bench/report.js)
//   node dist/bench/report.js [--rounds 3] [--seconds 5] [--conn-seconds 5] [--pings 400]
//       [--concurrency 4] [--rules 10000] [--only ROWS] [--quick] [--json] [--write|--no-write]
//
// Rows (--only takes a comma-separated list of these ids or the groups `dataplane` and
// `control`; the kernel VXLAN baseline is always measured with any data-path row):
//   veth vxlan flannel ovs ovs-local cirrus-local cirrus cirrus-policy cirrus-fip
//   ports control-scale convergence attach policy-update
//
// Per data path and round (the order of the paths rotates every round): iperf3 1 stream and
// 4 streams (--seconds each), ping (--pings at 5 ms), new TCP connections per second
// (bench/support/connrate.py, --concurrency clients, --conn-seconds). Through the ECMP
// floating IP, throughput is measured with iperf 2 (each stream its own connection: each
// may land on another back end, where iperf3's streams must all meet its control
// connection's server); the baseline is then measured with iperf 2 too, for that ratio.
//
// Everything this run makes is named from `rb<pid>` (the lab, its workloads `rb<pid>w-*`,
// the hand-built paths `rb<pid>{v,x,f,o}-*`) and deleted at the end, pass, fail or Ctrl-C;
// every process it starts is stopped by its PID. The docs are written after a full run
// (all rows, not --quick) unless --no-write; --write forces it.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../src/agent/dataplane/kernel.js';
import { parseRule } from '../src/cli/rule-syntax.js';
import { pollUntil } from '../src/util/poll.js';
import { CIRRUS, REPO, freePort } from '../test/support/server.js';
import { type DataPath, buildFlannel, buildKernelVxlan, buildVeth, deleteNetnsWithPrefix } from './support/baselines.js';
import { machineCpuSeconds } from './support/cpu.js';
import { must, stopChild } from './support/exec.js';
import { flagNumber, flagSet, flagString } from './support/flags.js';
import { JsonClient, expectOk } from './support/http.js';
import { Servers, connRate, iperf2, iperf3, pingRtts } from './support/measure.js';
import { buildOvs, ovsAvailable } from './support/ovs.js';
import { createPolicy, fillerRuleText, introspect, policyNotInKernel } from './support/policies.js';
import { renderChart } from './support/report-chart.js';
import { type ControlFigure, type RowReport, figure, median, quantile, ratioTo, renderBlock, replaceBlock } from './support/report-doc.js';

// ---- flags ------------------------------------------------------------------------------

const QUICK = flagSet('--quick');
const ROUNDS = flagNumber('--rounds', QUICK ? 1 : 3);
const SECONDS = flagNumber('--seconds', QUICK ? 2 : 5);
const CONN_SECONDS = flagNumber('--conn-seconds', SECONDS);
const PINGS = flagNumber('--pings', QUICK ? 100 : 400);
const CONCURRENCY = flagNumber('--concurrency', 4);
const RULES = flagNumber('--rules', QUICK ? 1000 : 10_000);
const PER_POLICY = 2_000;
const PING_INTERVAL_MS = 5;
const asJson = flagSet('--json');

const DATA_ROWS = ['veth', 'vxlan', 'flannel', 'ovs', 'ovs-local', 'cirrus-local', 'cirrus', 'cirrus-policy', 'cirrus-fip'] as const;
const CONTROL_ROWS = ['ports', 'control-scale', 'convergence', 'attach', 'policy-update'] as const;
type DataRow = (typeof DATA_ROWS)[number];
type ControlRow = (typeof CONTROL_ROWS)[number];

/** --only: ids and groups, checked by name. */
function selected(): { data: DataRow[]; control: ControlRow[]; all: boolean } {
  if (!flagSet('--only')) return { data: [...DATA_ROWS], control: [...CONTROL_ROWS], all: true };
  const want = new Set<string>();
  for (const w of flagString('--only', '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (w === 'dataplane') DATA_ROWS.forEach((r) => want.add(r));
    else if (w === 'control') CONTROL_ROWS.forEach((r) => want.add(r));
    else if ((DATA_ROWS as readonly string[]).includes(w) || (CONTROL_ROWS as readonly string[]).includes(w)) want.add(w);
    else throw new Error(`--only: unknown row '${w}' (rows: ${[...DATA_ROWS, ...CONTROL_ROWS].join(', ')}; groups: dataplane, control)`);
  }
  const data = DATA_ROWS.filter((r) => want.has(r));
  if (data.length && !data.includes('vxlan')) data.splice(1, 0, 'vxlan'); // every ratio's base
  return { data: DATA_ROWS.filter((r) => data.includes(r)), control: CONTROL_ROWS.filter((r) => want.has(r)), all: false };
}
const SEL = selected();
const WRITE = flagSet('--no-write') ? false : flagSet('--write') || (SEL.all && !QUICK);

// ---- names ------------------------------------------------------------------------------

const P = `rb${process.pid}`;
const LAB = P;
const W = (s: string) => `${P}w-${s}`;
const PREFIX = { veth: `${P}v-`, vxlan: `${P}x-`, flannel: `${P}f-`, ovs: `${P}o-` };
const ALL_PREFIXES = [`${P}-`, `${P}w-`, ...Object.values(PREFIX)];
const PROJECT = ['default-domain', 'admin'];
const FIP = '10.96.0.10';

const ROW_INFO: Record<DataRow, { label: string; how: string }> = {
  veth: { label: 'veth pair', how: 'two namespaces joined by one veth pair, MTU 1500: the physical limit of this machine (no overlay, no routing)' },
  vxlan: {
    label: 'kernel VXLAN (baseline)',
    how: 'built by hand (bench/support/baselines.ts): two host namespaces on a bridge underlay as the lab\'s fabric, one `vxlan external` device each, `encap ip id 100` routes in a per-network table, a `tun_id` rule on receive, permanent neighbours, workload MTU 1450: Cirrus\'s own data path without Cirrus',
  },
  flannel: { label: 'flannel-style L2 (bridge + VXLAN)', how: 'by hand: in each host a Linux bridge with the workload\'s veth and a VXLAN device (static fdb, head-end replication for ARP), same underlay, MTU 1450: what flannel\'s vxlan backend builds' },
  ovs: {
    label: 'Open vSwitch userspace, cross-host',
    how: 'Open vSwitch 3.1, `datapath_type=netdev` (this kernel has no OVS module), Neutron\'s layout: per host br-int (workloads, a `vxlan` tunnel port) and br-phy (the underlay port, the host\'s address); one ovsdb-server and ovs-vswitchd per host namespace; transmit offloads off in the workloads (see notes)',
  },
  'ovs-local': { label: 'Open vSwitch userspace, same host', how: 'two workloads on the same br-int, userspace TSO on (`other_config:userspace-tso-enable=true`), offloads on' },
  'cirrus-local': { label: 'Cirrus, same host', how: 'a 3-host lab (`cirrus lab up`), network red, both workloads on h1: routed through the host\'s per-network table and nftables chains' },
  cirrus: { label: 'Cirrus, cross-host', how: 'the same lab, red, client on h1, server on h2: the overlay (VXLAN through `cvx`) and both hosts\' chains' },
  'cirrus-policy': {
    label: `Cirrus, cross-host, ${RULES.toLocaleString('en')} policy rules`,
    how: `network pol with ${RULES.toLocaleString('en')} rules attached (${RULES - 1} filler rules \`pass|deny tcp pol > 172.16.X.Y/32 PORT\` as ${Math.ceil((RULES - 1) / PER_POLICY)} policies, then \`pass any pol > pol\` last: the measured flows match the last rule); the agent compiles the fillers into rule maps`,
  },
  'cirrus-fip': {
    label: 'Cirrus, ECMP floating IP',
    how: `client in network blue on h1, ${FIP} a floating IP of pool network svc over back ends in network web on h2 and h3 (\`cirrus fip create --pool svc --ip ${FIP} --port ...\`), policy \`pass any blue <> svc\`: each new connection is hashed to a back end host, then DNATed there`,
  },
};

// ---- processes and clean-up -------------------------------------------------------------

const servers = new Servers();
let ovsStop: (() => Promise<void>) | undefined;
let labTried = false;
const controlChildren = new Set<ChildProcess>();
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const c of [...controlChildren]) await stopChild(c, 30_000);
    await servers.stop();
    await ovsStop?.().catch((e: Error) => log(`ovs stop: ${e.message}`));
    if (labTried) {
      const r = await run(process.execPath, [CIRRUS, 'lab', 'down', '--name', LAB]);
      if (r.code !== 0) log(`lab down: ${r.stderr.trim()}`);
    }
    const left = await deleteNetnsWithPrefix(...ALL_PREFIXES);
    if (left.length) log(`namespaces deleted: ${left.join(' ')}`);
  })();
  return cleaned;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const started = Date.now();
function log(s: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}\n`);
}

// ---- building the paths -----------------------------------------------------------------

const api = { base: '', env: process.env, client: undefined as JsonClient | undefined };
const cirrus = (...args: string[]) => must(process.execPath, [CIRRUS, ...args], api.env);

async function uuidOf(type: string, name: string): Promise<string> {
  return expectOk(`${type} ${name}`, await api.client!.request('POST', '/fqname-to-id', { type, fq_name: [...PROJECT, name] }))['uuid'] as string;
}

/** Network pol's rules: fillers in policies of PER_POLICY, then `pass any pol > pol` last. */
async function buildPolicyRules(): Promise<void> {
  const fillers = RULES - 1;
  for (let start = 0, k = 0; start < fillers; start += PER_POLICY, k++) {
    const rules = [];
    for (let i = start; i < Math.min(fillers, start + PER_POLICY); i++) rules.push(parseRule(fillerRuleText(i, 'pol', i % 2 ? 'deny' : 'pass'), PROJECT, i - start + 1));
    const name = `${P}-rules-${k + 1}`;
    await createPolicy(api.client!, PROJECT, name, rules);
    await cirrus('policy', 'attach', name, '--network', 'pol', '--sequence', String(k));
  }
  await cirrus('policy', 'create', `${P}-pol-pass`, '--rule', 'pass any pol > pol');
  await cirrus('policy', 'attach', `${P}-pol-pass`, '--network', 'pol', '--sequence', '100');
  const uuid = await uuidOf('virtual-network', 'pol');
  const vrfs = await introspect<{ vrfs: { uuid: string; network_id: number }[] }>(LAB, 'h1', '/vrfs');
  const id = vrfs.vrfs.find((v) => v.uuid === uuid)?.network_id;
  if (id === undefined) throw new Error('network pol has no vrf on h1');
  const net = { uuid, name: 'pol', id, subnet: '10.72.0.0/24' };
  await pollUntil(
    `${RULES} rules of pol in the kernels of h1 (out) and h2 (in)`,
    async () => ((await policyNotInKernel(LAB, 'h1', net, 'out', RULES)) ?? (await policyNotInKernel(LAB, 'h2', net, 'in', RULES)) ? undefined : true),
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

/** The lab and its workloads for the selected Cirrus rows. */
async function buildCirrus(rows: DataRow[]): Promise<Partial<Record<DataRow, DataPath>>> {
  const port = await freePort();
  api.base = `http://127.0.0.1:${port}`;
  api.env = { ...process.env, CIRRUS_API: api.base };
  labTried = true; // from here on `lab down` runs, even if `lab up` fails half-way
  const hosts = rows.includes('cirrus-fip') ? 3 : 2;
  log(`lab ${LAB} up (${hosts} hosts)`);
  await cirrus('lab', 'up', '--hosts', String(hosts), '--name', LAB, '--api-port', String(port));
  api.client = new JsonClient(api.base, 2);
  const add = (w: string, host: string, network: string, ip: string) => cirrus('lab', 'workload', 'add', W(w), '--host', host, '--network', network, '--ip', ip, '--name', LAB);
  const paths: Partial<Record<DataRow, DataPath>> = {};
  if (rows.includes('cirrus') || rows.includes('cirrus-local')) {
    await cirrus('network', 'create', 'red', '--subnet', '10.71.0.0/24');
    await add('r1', 'h1', 'red', '10.71.0.11');
    if (rows.includes('cirrus')) {
      await add('r2', 'h2', 'red', '10.71.0.12');
      paths.cirrus = { client: W('r1'), server: W('r2'), serverIp: '10.71.0.12' };
    }
    if (rows.includes('cirrus-local')) {
      await add('r3', 'h1', 'red', '10.71.0.13');
      paths['cirrus-local'] = { client: W('r1'), server: W('r3'), serverIp: '10.71.0.13' };
    }
  }
  if (rows.includes('cirrus-policy')) {
    await cirrus('network', 'create', 'pol', '--subnet', '10.72.0.0/24');
    await add('p1', 'h1', 'pol', '10.72.0.11');
    await add('p2', 'h2', 'pol', '10.72.0.12');
    log(`${RULES} rules on network pol`);
    await buildPolicyRules();
    paths['cirrus-policy'] = { client: W('p1'), server: W('p2'), serverIp: '10.72.0.12' };
  }
  if (rows.includes('cirrus-fip')) {
    await cirrus('network', 'create', 'blue', '--subnet', '10.73.0.0/24');
    await cirrus('network', 'create', 'web', '--subnet', '10.74.0.0/24');
    await cirrus('network', 'create', 'svc', '--subnet', '10.96.0.0/24');
    await add('b1', 'h1', 'blue', '10.73.0.11');
    await add('s2', 'h2', 'web', '10.74.0.12');
    await add('s3', 'h3', 'web', '10.74.0.13');
    await cirrus('policy', 'create', `${P}-blue-svc`, '--rule', 'pass any blue <> svc');
    for (const n of ['blue', 'svc']) await cirrus('policy', 'attach', `${P}-blue-svc`, '--network', n);
    await cirrus('fip', 'create', '--pool', 'svc', '--ip', FIP, '--port', W('s2'), W('s3'));
    paths['cirrus-fip'] = { client: W('b1'), server: W('s2'), serverIp: FIP };
  }
  return paths;
}

async function reachable(p: DataPath): Promise<void> {
  await pollUntil(`${p.client} reaches ${p.serverIp}`, async () => ((await run('ip', ['netns', 'exec', p.client, 'ping', '-c', '1', '-W', '1', p.serverIp])).code === 0 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 200,
  });
}

// ---- measuring --------------------------------------------------------------------------

interface RoundSample {
  gbps1: number;
  gbps4: number;
  retr1: number;
  retr4: number;
  rtts: number[];
  connRate: number;
  connErrors: number;
}

async function measurePath(row: DataRow, p: DataPath): Promise<RoundSample> {
  const tput = row === 'cirrus-fip' ? iperf2 : iperf3;
  const t1 = await tput(p.client, p.serverIp, 1, SECONDS);
  const t4 = await tput(p.client, p.serverIp, 4, SECONDS);
  const rtts = await pingRtts(p.client, p.serverIp, PINGS, PING_INTERVAL_MS);
  const c = await connRate(p.client, p.serverIp, CONN_SECONDS, CONCURRENCY);
  return { gbps1: t1.gbps, gbps4: t4.gbps, retr1: t1.retransmits, retr4: t4.retransmits, rtts, connRate: c.rate, connErrors: c.errors };
}

// ---- control plane: quick runs of the other benchmarks ----------------------------------

interface ControlRun {
  script: string;
  args: string[];
  figures(r: any): ControlFigure[];
  section: string;
}

const ms = (x: number | undefined) => (x === undefined ? '–' : `${Math.round(x * 10) / 10} ms`);

const CONTROL: Record<Exclude<ControlRow, 'attach'>, ControlRun> = {
  ports: {
    script: 'ports.js',
    args: QUICK ? ['--ports', '1000', '--warmup', '100'] : ['--ports', '5000', '--warmup', '500'],
    section: 'Config API: port creation',
    figures: (r) => [{ what: 'port creation through the API (VM + VMI + instance-ip), 32 in flight', value: `${Math.round(r.portsPerSecond)} ports/s, p99 ${ms(r.createLatencyMs.p99)}`, target: '≥ 2,000 ports/s, p99 < 20 ms', source: '' }],
  },
  'control-scale': {
    script: 'control-scale.js',
    args: QUICK ? ['--agents', '50', '--networks', '100', '--ports', '2000', '--changes', '50'] : ['--agents', '200', '--networks', '500', '--ports', '20000', '--changes', '100'],
    section: 'Control node at scale',
    figures: (r) => [
      { what: `port change → every interested agent (${r.agents} agents, ${r.ports} ports)`, value: `p50 ${ms(r.fanOut.allInterestedMs.p50)}, p99 ${ms(r.fanOut.allInterestedMs.p99)}`, target: 'p99 < 100 ms', source: '' },
      { what: `full sync per agent, ${r.agents} connecting at once`, value: `p99 ${ms(r.sync.perAgentMs.p99)}`, target: '–', source: '' },
      { what: 'control node memory (peak RSS)', value: `${Math.round(r.memory.control.peakMiB)} MiB`, target: '< 1 GiB', source: '' },
    ],
  },
  convergence: {
    script: 'convergence.js',
    args: QUICK ? ['--ports', '12'] : ['--ports', '60'],
    section: 'Convergence: from the API call to a reachable workload on another host',
    figures: (r) => [
      { what: `convergence: API call → first echo reply from another host (${r.ports} ports, ${r.hosts} hosts)`, value: `p50 ${ms(r.cirrus.reply?.p50)}, p99 ${ms(r.cirrus.reply?.p99)} (by hand: p99 ${ms(r.baseline.reply?.p99)})`, target: 'p99 < 300 ms', source: '' },
    ],
  },
  'policy-update': {
    script: 'policy.js',
    args: ['--configs', '', '--rounds', '1', '--rules', QUICK ? '1000' : '10000'],
    section: 'Policies: cost on the data path, and update time',
    figures: (r) => [
      {
        what: `policy update, ${r.rules} rules: API call → flow changes`,
        value: `attach ${ms(r.update?.attach.ms)}, replace ${ms(r.update?.deny.ms)} / ${ms(r.update?.update.ms)}`,
        target: '< 500 ms',
        source: '',
      },
    ],
  },
};

/** Runs one benchmark with --json; its figures, or one line saying how it failed. */
async function runControl(row: ControlRow): Promise<ControlFigure[]> {
  if (row === 'attach') return documentedAttach();
  const c = CONTROL[row];
  const argv = [path.join(REPO, 'dist/bench', c.script), ...c.args, '--json'];
  const shown = `node dist/bench/${c.script} ${c.args.map((a) => (a === '' ? "''" : a)).join(' ')} --json`;
  const source = `this run: \`${shown}\`${QUICK ? ' (quick)' : ''}; method and earlier figures: "${c.section}" below`;
  log(`control plane: ${shown}`);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  controlChildren.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
  const timer = setTimeout(() => void stopChild(child, 30_000), 20 * 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);
  controlChildren.delete(child);
  const json = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  try {
    if (!json) throw new Error(`exit ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
    return c.figures(JSON.parse(json)).map((f) => ({ ...f, source }));
  } catch (e) {
    log(`${row} failed: ${(e as Error).message}`);
    return [{ what: row, value: `failed: ${(e as Error).message.slice(0, 200)}`, target: '–', source }];
  }
}

/**
 * The attach figures as docs/benchmarks.md last recorded them, marked with the date of the
 * commit that wrote them: bench/attach.ts starts an agent without a control node, which
 * agents no longer accept (they need the control token), so it cannot run on this tree.
 */
async function documentedAttach(): Promise<ControlFigure[]> {
  const section = 'Agent: attaching 1,000 workloads to one host';
  const doc = fs.readFileSync(path.join(REPO, 'docs/benchmarks.md'), 'utf8');
  const at = doc.indexOf(`## ${section}`);
  const text = at < 0 ? '' : doc.slice(at, doc.indexOf('\n## ', at + 3));
  const cells = (label: string) => text.split('\n').find((l) => l.startsWith(`| ${label}`))?.split('|').slice(2, -2).map((c) => c.replace(/\*/g, '').trim()) ?? [];
  const reachable = cells('all 1,000 reachable');
  const noop = cells('no-change reconcile');
  const date = (await run('git', ['-C', REPO, 'log', '-1', '--format=%cs', '-S', 'all 1,000 reachable', '--', 'docs/benchmarks.md'])).stdout.trim() || 'unknown date';
  const source = `**not run**: the latest figures of "${section}" below (runs of ${date}); bench/attach.ts starts its agent without a control node, which agents no longer accept`;
  if (!reachable.length) return [{ what: 'attach', value: 'no figures found in docs/benchmarks.md', target: '–', source }];
  return [
    { what: '1,000 workloads attached to one host until all reachable', value: reachable.join(' / '), target: '< 5,000 ms', source },
    { what: 'no-change reconcile of 1,000 ports, p50', value: noop.join(' / '), target: '< 100 ms', source },
  ];
}

// ---- the report -------------------------------------------------------------------------

function machineLines(): string[] {
  const lines: string[] = [];
  const envReadme = '/work/.library/env/README.md';
  const kind = fs.existsSync(envReadme) ? /Now: `([^`]+)`/.exec(fs.readFileSync(envReadme, 'utf8'))?.[1] : undefined;
  if (kind) lines.push(`machine kind \`${kind}\` (${envReadme}): 2 cores and 24 GiB for every developer and CI, shared with other work`);
  lines.push(`${os.availableParallelism()} CPUs (\`nproc\`), ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB of memory`);
  lines.push(`Linux ${os.release()}, Node ${process.version}`);
  return lines;
}

async function toolVersions(): Promise<string> {
  const first = async (cmd: string, args: string[]) => (await run(cmd, args)).stdout.split('\n')[0]?.trim() ?? '?';
  const ovs = ovsAvailable() ? await first('ovs-vswitchd', ['--version']) : 'Open vSwitch not installed';
  const iperf = (await run('iperf', ['-v'])).stderr.trim() || (await first('iperf', ['-v']));
  return `${await first('iperf3', ['--version'])}; ${iperf}; ${ovs}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/report needs root: the paths are network namespaces');
  const load0 = os.loadavg();
  const date = new Date().toISOString().slice(0, 10);
  const paths: Partial<Record<DataRow, DataPath>> = {};
  const rows = SEL.data;
  const samples = Object.fromEntries(rows.map((r) => [r, [] as RoundSample[]])) as Record<DataRow, RoundSample[]>;
  const baselineIperf2: { gbps1: number[]; gbps4: number[] } = { gbps1: [], gbps4: [] };
  let busyCores = NaN;
  let control: ControlFigure[] = [];
  try {
    if (rows.length) {
      log('building the hand-made paths');
      if (rows.includes('veth')) paths.veth = await buildVeth(PREFIX.veth);
      paths.vxlan = await buildKernelVxlan(PREFIX.vxlan, true);
      if (rows.includes('flannel')) paths.flannel = await buildFlannel(PREFIX.flannel, true);
      if (rows.includes('ovs') || rows.includes('ovs-local')) {
        if (!ovsAvailable()) throw new Error('Open vSwitch is not installed: run ./setup.sh build (openvswitch-switch), or leave out ovs and ovs-local with --only');
        log('Open vSwitch (userspace datapath)');
        const o = await buildOvs(PREFIX.ovs);
        ovsStop = o.stop;
        if (rows.includes('ovs')) paths.ovs = o.crossHost;
        if (rows.includes('ovs-local')) paths['ovs-local'] = o.sameHost;
      }
      const cirrusRows = rows.filter((r) => r.startsWith('cirrus'));
      if (cirrusRows.length) Object.assign(paths, await buildCirrus(cirrusRows));
      // Servers: one set per server namespace; through the floating IP, in every back end.
      const serverNs = new Set(rows.map((r) => paths[r]!.server));
      if (rows.includes('cirrus-fip')) serverNs.add(W('s3'));
      for (const ns of serverNs) await servers.startIn(ns);
      for (const r of rows) await reachable(paths[r]!);

      const cpu0 = machineCpuSeconds();
      const t0 = Date.now();
      for (let round = 0; round < ROUNDS; round++) {
        const order = rows.map((_, i) => rows[(i + round) % rows.length]!);
        for (const r of order) {
          const s = await measurePath(r, paths[r]!);
          samples[r].push(s);
          log(`round ${round + 1}/${ROUNDS} ${r}: ${s.gbps1.toFixed(2)} / ${s.gbps4.toFixed(2)} Gbit/s, p50 ${quantile(s.rtts, 0.5).toFixed(0)} µs, ${s.connRate.toFixed(0)} conn/s`);
          if (r === 'vxlan' && rows.includes('cirrus-fip')) {
            const v = paths.vxlan!;
            baselineIperf2.gbps1.push((await iperf2(v.client, v.serverIp, 1, SECONDS)).gbps);
            baselineIperf2.gbps4.push((await iperf2(v.client, v.serverIp, 4, SECONDS)).gbps);
          }
        }
      }
      const cpu1 = machineCpuSeconds();
      if (cpu0 !== undefined && cpu1 !== undefined) busyCores = (cpu1 - cpu0) / ((Date.now() - t0) / 1000);
    }
  } finally {
    await cleanup();
  }
  // The control-plane benchmarks run after the lab is gone: they build their own.
  for (const c of SEL.control) control = control.concat(await runControl(c));

  // ---- summary ----
  const base = samples.vxlan ?? [];
  const baseRtts = base.flatMap((s) => s.rtts);
  const B = {
    gbps1: median(base.map((s) => s.gbps1)),
    gbps4: median(base.map((s) => s.gbps4)),
    p50: quantile(baseRtts, 0.5),
    p99: quantile(baseRtts, 0.99),
    conn: median(base.map((s) => s.connRate)),
    iperf2gbps1: median(baselineIperf2.gbps1),
    iperf2gbps4: median(baselineIperf2.gbps4),
  };
  const reports: RowReport[] = rows.map((r) => {
    const s = samples[r];
    const rtts = s.flatMap((x) => x.rtts);
    const gbps1 = figure(s.map((x) => x.gbps1));
    const gbps4 = figure(s.map((x) => x.gbps4));
    const connRate = figure(s.map((x) => x.connRate));
    const p50 = quantile(rtts, 0.5);
    const p99 = quantile(rtts, 0.99);
    const fip = r === 'cirrus-fip';
    return {
      id: r,
      ...ROW_INFO[r],
      throughputTool: fip ? 'iperf 2' : 'iperf3',
      ...(gbps1 ? { gbps1 } : {}),
      ...(gbps4 ? { gbps4 } : {}),
      ...(connRate ? { connRate } : {}),
      rttP50Us: p50,
      rttP99Us: p99,
      ratios: {
        gbps1: ratioTo(gbps1?.median, fip ? B.iperf2gbps1 : B.gbps1),
        gbps4: ratioTo(gbps4?.median, fip ? B.iperf2gbps4 : B.gbps4),
        rttP50: ratioTo(p50, B.p50),
        rttP99: ratioTo(p99, B.p99),
        connRate: ratioTo(connRate?.median, B.conn),
      },
    };
  });
  const connErrors = rows.reduce((n, r) => n + samples[r].reduce((m, s) => m + s.connErrors, 0), 0);
  const notes: string[] = [];
  if (rows.includes('cirrus-fip')) {
    notes.push(
      `Through the floating IP, throughput is iperf 2 (\`iperf -c ${FIP} -P 1|4 -y C\`): iperf3's data streams must reach the server its control connection reached, and each new connection to an ECMP address may land on another back end. The baseline measured the same way in the same rounds: ${B.iperf2gbps1.toFixed(2)} / ${B.iperf2gbps4.toFixed(2)} Gbit/s (1 / 4 streams). With 4 streams the connections spread over both back-end hosts.`,
    );
  }
  if (rows.includes('ovs')) {
    notes.push(
      'The Open vSwitch offload trap: a veth hands OVS\'s userspace datapath TCP packets whose checksum and segmentation are left to "hardware". With userspace TSO on, OVS 3.1 carries them between local ports (the same-host row) but cannot checksum or segment them into a VXLAN tunnel: cross-host TCP moves 0 bytes (ping works, which hides it) until the workloads turn transmit offloads off (`ethtool -K eth0 tx off`), as this run does for the cross-host pair. Without TSO every 1,450-byte packet then crosses OVS\'s userspace (AF_PACKET) datapath one by one, polled by its main thread on a 2-core machine: that, not the tunnel, sets the cross-host row.',
    );
  }
  if (rows.includes('cirrus-policy')) notes.push(`The ${RULES.toLocaleString('en')} rules were verified in both hosts' kernels (the agents' compiled rules and the counted lines of h1's pol_out and h2's pol_in chains) before the first measurement.`);
  notes.push(`New connections: \`connrate.py client IP 5300 ${CONN_SECONDS} ${CONCURRENCY}\` (${CONCURRENCY} clients, each connect, read one byte, close with RST); ${connErrors} failed connections in all rows and rounds.`);
  const bs = reports.find((r) => r.id === 'vxlan');
  const range = (f: { min: number; max: number } | undefined, d: number) => (f ? `${f.min.toFixed(d)}–${f.max.toFixed(d)}` : '–');
  const noise = `load average ${load0.map((x) => x.toFixed(2)).join(' / ')} (1 / 5 / 15 min) when the run started; ${Number.isFinite(busyCores) ? `${busyCores.toFixed(2)} of ${os.availableParallelism()} cores busy on average during the measurements (this benchmark's own traffic included)` : 'busy cores not measured'}. The baseline's own rounds ranged ${range(bs?.gbps1, 2)} Gbit/s (1 stream) and ${range(bs?.connRate, 0)} connections/s: the machine is shared with other developers' builds and tests, so compare rows within one run and treat differences smaller than the spread table's ranges as noise.`;
  const args = process.argv.slice(2).map((a) => (a === '' ? "''" : a)).join(' ');
  const tools = await toolVersions();
  const commands = [
    `npm run build && ${args ? `node dist/bench/report.js ${args}` : 'npm run bench   # node dist/bench/report.js'}`,
    `# per path and round (order rotated each round):`,
    `iperf3 -c SERVER -t ${SECONDS} -P 1 -J;  iperf3 -c SERVER -t ${SECONDS} -P 4 -J   # through the floating IP: iperf -c ${FIP} -t ${SECONDS} -P 1|4 -y C`,
    `ping -c ${PINGS} -i ${PING_INTERVAL_MS / 1000} SERVER`,
    `python3 bench/support/connrate.py client SERVER 5300 ${CONN_SECONDS} ${CONCURRENCY}`,
  ];
  const settings = `${ROUNDS} round${ROUNDS === 1 ? '' : 's'}${QUICK ? ' (quick mode: a smoke run, not figures to quote)' : ''}; iperf ${SECONDS} s per test; ${PINGS} pings at ${PING_INTERVAL_MS} ms; new connections ${CONN_SECONDS} s with ${CONCURRENCY} clients; wall time ${Math.round((Date.now() - started) / 1000)} s. Tools: ${tools}.`;
  const chartFile = 'benchmarks-report.svg';
  const chart = renderChart({
    title: 'Data paths on one machine, ratio to the kernel VXLAN baseline',
    subtitle: `${date}, ${os.availableParallelism()} shared cores, Linux ${os.release()}; medians of ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}`,
    series: [
      { name: 'TCP 1 stream', color: '#4e79a7' },
      { name: 'TCP 4 streams', color: '#59a14f' },
      { name: 'new connections/s', color: '#f28e2b' },
    ],
    groups: reports.map((r) => ({ label: r.label.replace(`${RULES.toLocaleString('en')} policy rules`, `${RULES / 1000}k rules`), values: [r.ratios.gbps1, r.ratios.gbps4, r.ratios.connRate] })),
  });
  const block = renderBlock({ date, machine: machineLines(), commands, settings, rows: reports, notes, control, noise, chart: chartFile });

  // Console: the table as plain text.
  const f = (x: number | undefined, d: number, w: number) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d)).padStart(w);
  if (reports.length) console.log(`${'path'.padEnd(44)}${'Gb/s 1'.padStart(8)}${'×'.padStart(6)}${'Gb/s 4'.padStart(8)}${'×'.padStart(6)}${'p50 µs'.padStart(8)}${'p99 µs'.padStart(8)}${'conn/s'.padStart(8)}${'×'.padStart(6)}`);
  for (const r of reports) {
    console.log(`${r.label.padEnd(44)}${f(r.gbps1?.median, 2, 8)}${f(r.ratios.gbps1, 2, 6)}${f(r.gbps4?.median, 2, 8)}${f(r.ratios.gbps4, 2, 6)}${f(r.rttP50Us, 0, 8)}${f(r.rttP99Us, 0, 8)}${f(r.connRate?.median, 0, 8)}${f(r.ratios.connRate, 2, 6)}`);
  }
  for (const c of control) console.log(`${c.what}: ${c.value} (target ${c.target})`);
  if (WRITE) {
    const doc = path.join(REPO, 'docs/benchmarks.md');
    fs.writeFileSync(path.join(REPO, 'docs', chartFile), chart);
    fs.writeFileSync(doc, replaceBlock(fs.readFileSync(doc, 'utf8'), block));
    log(`wrote docs/benchmarks.md (the report block) and docs/${chartFile}`);
  } else log('docs not written (a partial or quick run; --write to write them anyway)');
  if (asJson) console.log(JSON.stringify({ date, rounds: ROUNDS, seconds: SECONDS, rows: reports, baselineIperf2: { gbps1: B.iperf2gbps1, gbps4: B.iperf2gbps4 }, control, busyCores, load0, samples: Object.fromEntries(rows.map((r) => [r, samples[r].map(({ rtts, ...rest }) => ({ ...rest, pings: rtts.length }))])) }));
}

try {
  await main();
} catch (e) {
  log(`report failed: ${(e as Error).stack ?? String(e)}`);
  await cleanup();
  process.exitCode = 1;
}
