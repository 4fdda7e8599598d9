// What network policies cost on the data path, and how long a large policy change takes to
// reach the kernel: two workloads of one network on two hosts of a lab.
//
//   node dist/bench/policy.js [--rounds 3] [--seconds 5] [--conn-seconds 5] [--concurrency 4]
//       [--rules 10000] [--per-policy 2000] [--filler mixed|pass|deny] [--interval 2]
//       [--no-update] [--configs a,b,c_last,c_first] [--json]                   (as root)
//
// One lab (`cirrus lab up --hosts 2`), network red (10.10.0.0/24), client workload on h1,
// server workload on h2: every packet crosses h1's forward chain, the VXLAN overlay and h2's
// forward chain. The configurations differ only in the policies attached to red, so path,
// workloads, addresses and processes are the same for all of them:
//
//   a        no policy: red's ports have no policy chain at all (the stateful forward chain
//            only; OpenContrail's default lets a network's own traffic pass).
//   b        pass-all: one policy `pass any any <> any` (2 compiled rules).
//   c_last   10,000 rules, the benchmark's flows matching the LAST one: 9,998 filler rules
//            (`pass|deny tcp red > 172.16.X.Y/32 PORT`, PORT 20000 and up: never this
//            flow), the probe rule `pass udp red > red 7000`, then `pass tcp red > red`.
//            The worst case for first-match evaluation.
//   c_first  the same 10,000 rules with `pass tcp red > red` first.
//
// The API takes at most 1 MiB per request, less than 10,000 TF rules (~330 bytes each), so
// the rules are --per-policy rules per policy (5 policies of 2,000 by default), attached
// to red with consecutive sequences: one ordered list of 10,000 rules, one nft chain per
// side and host.
//
// Per configuration (order rotated every round): iperf3 (1 stream, --seconds), then new
// TCP connections per second (bench/support/connrate.py: connect, read one byte, close
// with RST) one at a time and with --concurrency clients, --conn-seconds each. Each new
// connection's SYN goes through h1's pol_out chain and h2's pol_in chain once; the rest of
// it is established traffic. The chains' counters, read around the connection runs, show
// how many packets per connection each of red's four chains saw (1, 1, 0, 0 expected).
// The servers (iperf3, connrate, UDP echo) run for the whole benchmark; before each
// measurement both agents report red's rules and the kernel's path chains hold them.
//
// Policy update (each round): red has only a gate policy `deny udp red > red 7000`; a UDP
// flow on port 7000 (bench/support/udp_prober.py) is probed every --interval ms.
//   attach   the 5 rule policies are attached before the gate (5 ref-updates): the probe
//            rule (rule 9,999) now passes the flow. Time from the first API call to the
//            send time of the first datagram that came back: both hosts have the 10,000
//            rules in the kernel.
//   deny     the last rule policy is replaced (PUT) with its probe rule denying: time until
//            the flow stops (the agent forgets the zone's connections after a change).
//   update   replaced again with the probe rule passing: time until it flows.
// Meanwhile each agent's /healthz is polled every 25 ms: its reconcile passes (when the
// one that applied the change started and ended) split the time between the API and
// control nodes (before the pass) and the agent (the pass, mostly `nft -f`).
// Afterwards the agent's nft script for red is timed by hand (`nft -f` in a scratch
// namespace) to show how much of the update is the kernel load.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../src/agent/dataplane/kernel.js';
import { type NftTable, desiredNft, nftScript } from '../src/agent/dataplane/nft.js';
import type { NetworkState } from '../src/agent/host-state.js';
import { type PolicyRule, parseRule } from '../src/cli/rule-syntax.js';
import { agentLog, hostNetns } from '../src/lab/layout.js';
import { CIRRUS, freePort } from '../test/support/server.js';
import { flagNumber, flagSet, flagString } from './support/flags.js';
import { cleanupOnSignals, labDown, must } from './support/exec.js';
import { CONN_PORT, connRate, iperf3 } from './support/measure.js';
import { startIn, stop, stopAll } from './support/netns-children.js';
import { JsonClient, expectOk } from './support/http.js';
import * as pol from './support/policies.js';
import { type PoliciesView, expectedCountedLines, fillerRuleText } from './support/policies.js';

const ROUNDS = flagNumber('--rounds', 3);
const SECONDS = flagNumber('--seconds', 5);
const CONN_SECONDS = flagNumber('--conn-seconds', 5);
const CONCURRENCY = flagNumber('--concurrency', 4);
const RULES = flagNumber('--rules', 10_000);
const PER_POLICY = flagNumber('--per-policy', 2_000);
const FILLER = flagString('--filler', 'mixed') as 'mixed' | 'pass' | 'deny';
const INTERVAL_MS = flagNumber('--interval', 2);
const UPDATE = !flagSet('--no-update');
const asJson = flagSet('--json');
if (!['mixed', 'pass', 'deny'].includes(FILLER)) throw new Error(`--filler: '${FILLER}' is not mixed, pass or deny`);
if (RULES < 3) throw new Error('--rules: at least 3');

const SUPPORT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/support');
const CONNRATE = path.join(SUPPORT, 'connrate.py');
const UDP_PROBER = path.join(SUPPORT, 'udp_prober.py');

const pid = process.pid;
const lab = `pb${pid}`.slice(0, 12);
const CLIENT = `pw${pid}c`;
const SERVER = `pw${pid}s`;
const SCRATCH = `${lab}-scratch`; // for timing nft by hand; deleted right after, and by cleanup()
const SUBNET = '10.10.0.0/24';
const CLIENT_IP = '10.10.0.11';
const SERVER_IP = '10.10.0.12';
const PROBE_PORT = 7000;
const PROJECT = ['default-domain', 'admin'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t: bigint = now()): number => Number(t - t0) / 1e6;
const round1 = (x: number) => Math.round(x * 10) / 10;




// ---- the lab's API and agents -----------------------------------------------------------

let api: JsonClient;
let redUuid = '';
let redId = 0;
/** Policies attached to red: uuid → sequence. */
const attached = new Map<string, number>();

const createPolicy = (name: string, rules: PolicyRule[]): Promise<string> => pol.createPolicy(api, PROJECT, name, rules);

async function putRules(uuid: string, rules: PolicyRule[]): Promise<void> {
  expectOk(`update policy ${uuid}`, await api.request('PUT', `/network-policy/${uuid}`, { 'network-policy': { network_policy_entries: { policy_rule: rules } } }));
}

async function refUpdate(op: 'ADD' | 'DELETE', policy: string, sequence = 0): Promise<void> {
  const body = { type: 'virtual-network', uuid: redUuid, 'ref-type': 'network-policy', 'ref-uuid': policy, operation: op, attr: op === 'ADD' ? { sequence: { major: sequence, minor: 0 } } : null };
  expectOk(`ref-update ${op} ${policy}`, await api.request('POST', '/ref-update', body));
  if (op === 'ADD') attached.set(policy, sequence);
  else attached.delete(policy);
}

/** Makes red's policies exactly `want` (uuid, sequence), in that order. */
async function setAttached(want: [string, number][]): Promise<void> {
  const wanted = new Map(want);
  for (const [uuid, seq] of [...attached]) if (wanted.get(uuid) !== seq) await refUpdate('DELETE', uuid);
  for (const [uuid, seq] of want) if (attached.get(uuid) !== seq) await refUpdate('ADD', uuid, seq);
}

const introspect = <T>(host: string, urlPath: string): Promise<T> => pol.introspect<T>(lab, host, urlPath);

/** The kernel's version of a policy chain: its rules (lines), or undefined when it does not exist. */
const kernelChain = (host: string, chain: string): Promise<string[] | undefined> => pol.kernelChain(lab, host, chain);

/** The chains on the flows' path: h1's for red's outgoing connections, h2's for incoming ones. */
const PATH_CHAINS = (): [string, string][] => [
  ['h1', `pol_out_${redId}`],
  ['h2', `pol_in_${redId}`],
];

/** A rule (by uuid) that must be red's first or last one: tells apart configurations with as many rules. */
interface Mark {
  uuid: string;
  at: 'first' | 'last';
}

/**
 * Waits until both agents have red's policy at `rules` compiled rules and the chains on the
 * path hold them in the kernel (with `probe`: the probe rule's verdict; with `mark`: that
 * rule in its place), then a little more.
 */
async function settle(rules: number, probe?: 'pass' | 'deny', mark?: Mark, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why = '';
  for (;;) {
    if (Date.now() > deadline) throw new Error(`policies did not settle at ${rules} rules within ${timeoutMs} ms: ${why}`);
    let ok = true;
    for (const h of ['h1', 'h2']) {
      const p = await introspect<PoliciesView>(h, '/policies');
      const acl = p.networks.find((x) => x.uuid === redUuid)?.rules ?? [];
      if (acl.length !== rules) {
        ok = false;
        why = `${h}'s agent has ${acl.length} rules`;
      } else if (mark && (mark.at === 'first' ? acl[0] : acl.at(-1))?.uuid !== mark.uuid) {
        ok = false;
        why = `${h}'s agent does not have rule ${mark.uuid} ${mark.at}`;
      }
    }
    if (ok) {
      for (const [h, chain] of PATH_CHAINS()) {
        const lines = await kernelChain(h, chain);
        const count = lines?.length ?? 0;
        // The agent's own rendering of its rules (runs of single-value rules become one map lookup) says how many counted lines to expect; no chain without a policy.
        const acl = (await introspect<PoliciesView>(h, '/policies')).networks.find((x) => x.uuid === redUuid)?.rules ?? [];
        const side = chain.startsWith('pol_out') ? 'out' : 'in';
        const expected = rules ? expectedCountedLines({ uuid: redUuid, name: 'red', id: redId, subnet: SUBNET }, acl, side) : 0;
        if (count !== expected) {
          ok = false;
          why = `${h}'s ${chain} has ${count} counted lines in the kernel, ${expected} expected`;
          break;
        }
        if (mark && !lines![mark.at === 'first' ? 0 : count - 2]!.includes(`"${mark.uuid}"`)) {
          ok = false;
          why = `${h}'s ${chain} does not have rule ${mark.uuid} ${mark.at} in the kernel`;
          break;
        }
        if (probe) {
          const line = lines!.find((l) => l.includes(`dport ${PROBE_PORT} `));
          const verdict = line === undefined ? 'none' : / drop /.test(line) ? 'deny' : 'pass';
          if (verdict !== probe) {
            ok = false;
            why = `${h}'s ${chain} has the probe rule at ${verdict}`;
            break;
          }
        }
      }
    }
    if (ok) break;
    await sleep(300);
  }
  await sleep(500);
}

// ---- the policies -----------------------------------------------------------------------

const rule = (text: string, seq: number) => parseRule(text, PROJECT, seq);
const probeRule = (action: 'pass' | 'deny', seq: number) => rule(`${action} udp red > red ${PROBE_PORT}`, seq);

interface Policies {
  passAll: string;
  benchPass: string;
  /** The uuid the API gave benchPass's rule. */
  benchPassRule: string;
  gate: string;
  /** The filler policies in order; the last one ends with the probe rule. */
  fillers: string[];
  /** The last filler policy's rules without its probe rule. */
  lastFillerRules: PolicyRule[];
}

async function createPolicies(): Promise<Policies> {
  const passAll = await createPolicy('pb-pass-all', [rule('pass any any <> any', 1)]);
  const benchPass = await createPolicy('pb-bench-pass', [rule('pass tcp red > red', 1)]);
  const gate = await createPolicy('pb-gate', [probeRule('deny', 1)]);
  // RULES - 2 fillers, then the probe rule; benchPass makes RULES.
  const fillerCount = RULES - 2;
  const fillers: string[] = [];
  let lastFillerRules: PolicyRule[] = [];
  const total = fillerCount + 1;
  for (let start = 0, k = 0; start < total; start += PER_POLICY, k++) {
    const rules: PolicyRule[] = [];
    for (let i = start; i < Math.min(total, start + PER_POLICY) && i < fillerCount; i++) {
      const action = FILLER === 'mixed' ? (i % 2 ? 'deny' : 'pass') : FILLER;
      rules.push(rule(fillerRuleText(i, 'red', action), i - start + 1));
    }
    const last = start + PER_POLICY >= total;
    if (last) lastFillerRules = rules;
    fillers.push(await createPolicy(`pb-rules-${k + 1}`, last ? [...rules, probeRule('pass', rules.length + 1)] : rules));
  }
  const read = expectOk('read policy pb-bench-pass', await api.request('GET', `/network-policy/${benchPass}`));
  const benchPassRule = read['network-policy'].network_policy_entries.policy_rule[0].rule_uuid as string;
  return { passAll, benchPass, benchPassRule, gate, fillers, lastFillerRules };
}

type ConfigKey = 'a' | 'b' | 'c_last' | 'c_first';
const ALL_CONFIGS: ConfigKey[] = ['a', 'b', 'c_last', 'c_first'];
/** --configs a,b,...: a subset, in this order ('' for the update measurement alone). */
const CONFIGS: ConfigKey[] = flagSet('--configs') ? ALL_CONFIGS.filter((k) => flagString('--configs', '').split(',').includes(k)) : ALL_CONFIGS;
const LABELS: Record<ConfigKey, string> = {
  a: '(a) no policy',
  b: '(b) pass-all policy',
  c_last: `(c) ${RULES} rules, match last`,
  c_first: `(c) ${RULES} rules, match first`,
};

/** The attachments of a configuration and its number of compiled rules. */
function configOf(key: ConfigKey, p: Policies): { refs: [string, number][]; rules: number; mark?: Mark } {
  switch (key) {
    case 'a':
      return { refs: [], rules: 0 };
    case 'b':
      return { refs: [[p.passAll, 0]], rules: 2 };
    case 'c_last':
      return { refs: [...p.fillers.map((u, i): [string, number] => [u, i]), [p.benchPass, 100]], rules: RULES, mark: { uuid: p.benchPassRule, at: 'last' } };
    case 'c_first':
      return { refs: [[p.benchPass, 0], ...p.fillers.map((u, i): [string, number] => [u, i + 1])], rules: RULES, mark: { uuid: p.benchPassRule, at: 'first' } };
  }
}

// ---- data path measurements -------------------------------------------------------------

interface Sample {
  gbps: number;
  retr: number;
  /** New connections per second, one client at a time / CONCURRENCY clients. */
  connSeq: number;
  connConc: number;
  /** Connect-to-first-byte of the one-at-a-time client, µs. */
  connP50Us: number;
  connP99Us: number;
  connErrors: number;
  /** Packets that went through each of red's policy chains per new connection (host/chain). */
  chainPacketsPerConn: Record<string, number>;
}

/** Red's four policy chains (host, chain): the two on the path first, then the server's out and the client's in. */
const ALL_CHAINS = (): [string, string][] => [...PATH_CHAINS(), ['h2', `pol_out_${redId}`], ['h1', `pol_in_${redId}`]];

/** Packets counted by each of red's policy chains (all its rules and its default), by "host/chain". */
async function chainPackets(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [h, chain] of ALL_CHAINS()) {
    const lines = (await kernelChain(h, chain)) ?? [];
    out[`${h}/${chain.replace(/_\d+$/, '')}`] = lines.reduce((sum, l) => sum + Number(/counter packets (\d+)/.exec(l)?.[1] ?? 0), 0);
  }
  return out;
}

async function measure(): Promise<Sample> {
  await must('ip', ['netns', 'exec', CLIENT, 'ping', '-c', '3', '-i', '0.2', '-W', '1', SERVER_IP]);
  const t = await iperf3(CLIENT, SERVER_IP, 1, SECONDS);
  const before = await chainPackets();
  const seq = await connRate(CLIENT, SERVER_IP, CONN_SECONDS, 1);
  const conc = await connRate(CLIENT, SERVER_IP, CONN_SECONDS, CONCURRENCY);
  const after = await chainPackets();
  const conns = seq.connections + conc.connections;
  const evals = Object.fromEntries(Object.keys(after).map((k) => [k, Math.round(((after[k]! - (before[k] ?? 0)) / conns) * 1000) / 1000]));
  return {
    gbps: t.gbps,
    retr: t.retransmits,
    connSeq: seq.rate,
    connConc: conc.rate,
    connP50Us: seq.p50Us,
    connP99Us: seq.p99Us,
    connErrors: seq.errors + conc.errors,
    chainPacketsPerConn: evals,
  };
}

// ---- policy update measurements ---------------------------------------------------------

interface Echo {
  seq: number;
  sent: bigint;
  recv: bigint;
}

/** udp_prober.py probing the flow from the client to the server's echo on PROBE_PORT. */
class Prober {
  readonly echoes: Echo[] = [];
  private waiter: (() => void) | undefined;

  private readonly started: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    let onStart!: () => void;
    this.started = new Promise((resolve) => (onStart = resolve));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^echo (\d+) (\d+) (\d+)$/.exec(line);
      if (m) this.echoes.push({ seq: Number(m[1]), sent: BigInt(m[2]!), recv: BigInt(m[3]!) });
      else if (line.startsWith('start ')) onStart();
      this.waiter?.();
    });
  }

  static async start(maxSeconds: number): Promise<Prober> {
    const child = await startIn(CLIENT, ['python3', UDP_PROBER, 'probe', SERVER_IP, String(PROBE_PORT), String(INTERVAL_MS), String(maxSeconds)], false);
    const p = new Prober(child);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p.started, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('udp prober: no start line within 10 s')), 10_000)))]);
    clearTimeout(timer);
    return p;
  }

  private async until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`udp probe: ${what} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 50);
        this.waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  }

  /** The first datagram sent at or after t0 that came back. */
  firstAnsweredAfter(t0: bigint, timeoutMs: number): Promise<Echo> {
    return this.until(() => this.echoes.find((e) => e.sent >= t0), timeoutMs, 'no echo');
  }

  /** The last datagram that came back, once none has for `quietMs` (after t0). */
  lastAnsweredBefore(t0: bigint, quietMs: number, timeoutMs: number): Promise<Echo> {
    return this.until(
      () => {
        const last = this.echoes.at(-1);
        const ref = last && last.recv > t0 ? last.recv : t0;
        return last && msSince(ref) >= quietMs ? last : undefined;
      },
      timeoutMs,
      'echoes did not stop',
    );
  }

  stop(): Promise<void> {
    this.child.stdin.end('quit\n');
    return stop(this.child);
  }
}

/** The agents' reconcile passes, seen by polling their /healthz (last_reconcile) every 25 ms. */
class PassWatcher {
  readonly passes: { host: string; endMs: number; durationMs: number; changes: number }[] = [];
  private readonly last = new Map<string, string>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private t0 = 0n;

  private async poll(record: boolean): Promise<void> {
    await Promise.all(
      ['h1', 'h2'].map(async (host) => {
        const h = await introspect<{ last_reconcile: { duration_ms: number; changes: number } | null }>(host, '/healthz').catch(() => undefined);
        const r = h?.last_reconcile;
        if (!r) return;
        const key = `${r.duration_ms}/${r.changes}`;
        if (this.last.get(host) === key) return;
        this.last.set(host, key);
        if (record) this.passes.push({ host, endMs: msSince(this.t0), durationMs: r.duration_ms, changes: r.changes });
      }),
    );
  }

  /** Starts watching: passes completed from now on are recorded, times relative to the returned t0. */
  async start(): Promise<bigint> {
    await this.poll(false);
    this.t0 = now();
    this.loop = (async () => {
      while (!this.stopped) {
        await this.poll(true);
        await sleep(25);
      }
    })();
    return this.t0;
  }

  /** Per host, the passes that changed something: how many, the first one's start, the last one's end, their total duration. */
  async stop(): Promise<Record<string, { passes: number; startMs: number; endMs: number; busyMs: number }>> {
    this.stopped = true;
    await this.loop;
    const out: Record<string, { passes: number; startMs: number; endMs: number; busyMs: number }> = {};
    for (const host of ['h1', 'h2']) {
      const big = this.passes.filter((p) => p.host === host && p.changes > 0);
      out[host] = {
        passes: big.length,
        startMs: big.length ? round1(big[0]!.endMs - big[0]!.durationMs) : NaN,
        endMs: big.length ? round1(big.at(-1)!.endMs) : NaN,
        busyMs: round1(big.reduce((sum, p) => sum + p.durationMs, 0)),
      };
    }
    return out;
  }
}

type Transition = 'attach' | 'deny' | 'update';
const TRANSITIONS: Transition[] = ['attach', 'deny', 'update'];

/** One policy change: end to end, the API call, and each agent's passes (see PassWatcher). */
interface TransitionSample {
  /** attach, update: from the first API call to the send time of the first answered datagram sent after it; deny: to the first datagram not answered any more. ms */
  ms: number;
  apiMs: number;
  agents: Record<string, { passes: number; startMs: number; endMs: number; busyMs: number }>;
  /** deny only: the established flow went on (ms is NaN then). */
  notCut?: true;
}
type UpdateSample = Record<Transition, TransitionSample>;

async function measureUpdate(p: Policies): Promise<UpdateSample> {
  await setAttached([[p.gate, 100]]);
  await settle(1, 'deny');
  let prober = await Prober.start(300);
  try {
    await sleep(400);
    if (prober.echoes.length) throw new Error('the probe flow passes with only the gate policy attached');

    // attach: the rule policies go before the gate; the probe rule passes the flow.
    let w = new PassWatcher();
    let t0 = await w.start();
    for (const [i, u] of p.fillers.entries()) await refUpdate('ADD', u, i);
    let apiMs = msSince(t0);
    const attached1 = await prober.firstAnsweredAfter(t0, 120_000);
    const attach = { ms: msSince(t0, attached1.sent), apiMs };
    await settle(RULES, 'pass'); // the fillers (RULES - 1 with the probe rule) and the gate
    const attachAgents = await w.stop();

    // deny: the last rule policy replaced, its probe rule now denying. The flow is
    // established: it stops only if the agents forget the zone's connections.
    const last = p.fillers.at(-1)!;
    w = new PassWatcher();
    t0 = await w.start();
    await putRules(last, [...p.lastFillerRules, probeRule('deny', p.lastFillerRules.length + 1)]);
    apiMs = msSince(t0);
    let deny: { ms: number; apiMs: number; notCut?: true };
    try {
      const lastEcho = await prober.lastAnsweredBefore(t0, 1_000, 30_000);
      deny = { ms: msSince(t0, lastEcho.sent) + INTERVAL_MS, apiMs };
      await settle(RULES, 'deny');
      if (prober.echoes.at(-1) !== lastEcho) throw new Error('the probe flow came back while its rule denies it');
    } catch (e) {
      if (!/echoes did not stop/.test((e as Error).message)) throw e;
      // The established flow survived the deny: recorded, shown, and probed anew from
      // another source port (a new connection) so that the update below starts denied.
      await settle(RULES, 'deny');
      process.stderr.write(`the probe flow was not cut 30 s after its rule became deny:\n${await diagnoseProbe()}`);
      deny = { ms: NaN, apiMs, notCut: true };
      await prober.stop();
      prober = await Prober.start(300);
      await sleep(400);
      if (prober.echoes.length) throw new Error('a new probe flow passes while its rule denies it');
    }
    const denyAgents = await w.stop();

    // update: replaced again, passing.
    w = new PassWatcher();
    t0 = await w.start();
    await putRules(last, [...p.lastFillerRules, probeRule('pass', p.lastFillerRules.length + 1)]);
    apiMs = msSince(t0);
    const updated = await prober.firstAnsweredAfter(t0, 120_000);
    const update = { ms: msSince(t0, updated.sent), apiMs };
    await settle(RULES, 'pass');
    const updateAgents = await w.stop();
    return { attach: { ...attach, agents: attachAgents }, deny: { ...deny, agents: denyAgents }, update: { ...update, agents: updateAgents } };
  } catch (e) {
    process.stderr.write(await diagnoseProbe());
    throw e;
  } finally {
    await prober.stop();
  }
}

/** For a failed update measurement: the probe rule in each of red's chains, as the agents and the kernels have it, and the flow's conntrack entries. */
async function diagnoseProbe(): Promise<string> {
  let out = `---- probe flow state at ${new Date().toISOString()} ----\n`;
  for (const h of ['h1', 'h2']) {
    const p = await introspect<PoliciesView>(h, '/policies').catch(() => undefined);
    const rules = p?.networks.find((x) => x.uuid === redUuid)?.rules ?? [];
    const probeRules = rules.filter((r) => r.protocol === 17 && r.dports?.some(([lo]) => lo === PROBE_PORT));
    out += `${h} agent: ${rules.length} rules; probe rules at ${probeRules.map((r) => `${rules.indexOf(r) + 1}:${r.action}`).join(', ')}\n`;
    for (const side of ['out', 'in']) {
      const lines = (await kernelChain(h, `pol_${side}_${redId}`)) ?? [];
      out += `${h} kernel pol_${side}: ${lines.length} counted lines; probe: ${lines.filter((l) => l.includes(`dport ${PROBE_PORT} `)).map((l) => l.trim()).join(' | ')}\n`;
    }
    const ct = await run('ip', ['netns', 'exec', hostNetns(lab, h), 'conntrack', '-L', '-p', 'udp', '--dport', String(PROBE_PORT)]);
    out += `${h} conntrack: ${ct.stdout.trim() || '(none)'} ${ct.stderr.trim()}\n`;
    const hz = await introspect<unknown>(h, '/healthz').catch((e: Error) => e.message);
    out += `${h} healthz: ${JSON.stringify(hz)}\n`;
  }
  return out;
}

/**
 * The agent's nft script for red's current rules (its two policy chains), loaded by hand
 * with `nft -f` in a scratch namespace: as a new table (the first apply) and as a
 * flush-and-add of both chains (what an agent writes when a policy changes). Median of 3, ms.
 */
async function nftLoadTimes(): Promise<{ rules: number; scriptLines: number; createMs: number; replaceMs: number }> {
  const view = await introspect<PoliciesView>('h1', '/policies');
  const red = view.networks.find((n) => n.uuid === redUuid);
  if (!red) throw new Error('nft timing: red has no policy on h1');
  const n = { uuid: red.uuid, name: 'red', id: red.network_id, table: 1_000_000 + red.network_id, serviceAddresses: [], subnets: [SUBNET], vni: 1, acl: red.rules } as NetworkState;
  // The agent's own script, for a host with one port in red: from nothing, and rewriting the chains.
  const port = { vmiUuid: 'p', network: n.uuid, hostIf: 'cv-bench', mac: '02:00:00:00:00:01', address: '10.10.0.9', prefixLen: 24, registration: { vmiUuid: 'p', mode: 'create' as const, enabled: true, createdAt: '' } };
  const desired = desiredNft({ networks: [n], ports: [port], remotes: [], leaks: [], pending: [] });
  const readBack = (t: NftTable): NftTable => ({ maps: new Map([...t.maps].map(([k, m]) => [k, new Map(m)])), chains: new Map([...t.chains.keys()].map((c) => [c, []])) });
  const createLines = nftScript(desired, { ip: 'missing', arp: 'missing' }, new Map()).lines;
  const create = createLines.join('\n') + '\n';
  const replace = nftScript(desired, { ip: readBack(desired.ip), arp: readBack(desired.arp) }, new Map()).lines.join('\n') + '\n';
  const time = async (script: string): Promise<number> => {
    const t0 = now();
    const r = await run('ip', ['netns', 'exec', SCRATCH, 'nft', '-f', '-'], script);
    if (r.code !== 0) throw new Error(`nft -f in ${SCRATCH}: ${r.stderr.trim().slice(0, 500)}`);
    return msSince(t0);
  };
  const createMs: number[] = [];
  const replaceMs: number[] = [];
  await must('ip', ['netns', 'add', SCRATCH]);
  try {
    for (let i = 0; i < 3; i++) {
      await run('ip', ['netns', 'exec', SCRATCH, 'nft', 'flush', 'ruleset']);
      createMs.push(await time(create));
      replaceMs.push(await time(replace));
    }
  } finally {
    await run('ip', ['netns', 'del', SCRATCH]);
  }
  return { rules: red.rules.length, scriptLines: replace.split('\n').length - 1, createMs: median(createMs), replaceMs: median(replaceMs) };
}

// ---- the run ----------------------------------------------------------------------------

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function summarize<T extends object>(samples: T[]): Record<keyof T, number> {
  const keys = (Object.keys(samples[0] ?? {}) as (keyof T)[]).filter((k) => typeof samples[0]![k] === 'number');
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k] as number))])) as Record<keyof T, number>;
}

let cleaned: Promise<void> | undefined;
let labTried = false;
let failed = false;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    api?.close();
    await stopAll();
    if (labTried && failed) {
      // The lab's logs go with it: their ends, for the failure's diagnosis.
      for (const host of ['h1', 'h2']) {
        const file = agentLog(lab, host);
        const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n') : '(none)';
        process.stderr.write(`---- ${host} agent log (end) ----\n${text}\n`);
      }
    }
    if (labTried) {
      await labDown(CIRRUS, lab);
    }
    const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
    for (const ns of left) if (ns === SCRATCH || ns === CLIENT || ns === SERVER) await run('ip', ['netns', 'del', ns]);
  })();
  return cleaned;
}

cleanupOnSignals(cleanup);

async function main(): Promise<void> {
  const started = Date.now();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, CIRRUS_API: base };
  const samples = Object.fromEntries(CONFIGS.map((k) => [k, [] as Sample[]])) as Record<ConfigKey, Sample[]>;
  const updates: UpdateSample[] = [];
  let nft: Awaited<ReturnType<typeof nftLoadTimes>> | undefined;
  const log = (s: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`);
  try {
    labTried = true; // from here on `lab down` runs, even if `lab up` fails half-way
    log(`lab ${lab} up`);
    await must(process.execPath, [CIRRUS, 'lab', 'up', '--hosts', '2', '--name', lab, '--api-port', String(port)], env);
    await must(process.execPath, [CIRRUS, 'network', 'create', 'red', '--subnet', SUBNET], env);
    for (const [w, h, ip] of [[CLIENT, 'h1', CLIENT_IP], [SERVER, 'h2', SERVER_IP]] as const) {
      await must(process.execPath, [CIRRUS, 'lab', 'workload', 'add', w, '--host', h, '--network', 'red', '--ip', ip, '--name', lab], env);
    }
    api = new JsonClient(base, 2);
    redUuid = expectOk('red', await api.request('POST', '/fqname-to-id', { type: 'virtual-network', fq_name: [...PROJECT, 'red'] }))['uuid'] as string;
    const vrfs = await introspect<{ vrfs: { uuid: string; network_id: number }[] }>('h1', '/vrfs');
    redId = vrfs.vrfs.find((v) => v.uuid === redUuid)!.network_id;
    log(`creating ${RULES} rules in ${Math.ceil((RULES - 1) / PER_POLICY)} policies`);
    const policies = await createPolicies();

    await startIn(SERVER, ['iperf3', '-s', '-B', SERVER_IP], false);
    await startIn(SERVER, ['python3', CONNRATE, 'server', SERVER_IP, String(CONN_PORT), '2'], true);
    await startIn(SERVER, ['python3', UDP_PROBER, 'echo', SERVER_IP, String(PROBE_PORT)], true);

    for (let r = 0; r < ROUNDS; r++) {
      // Rotated order: each configuration takes each place in turn.
      const order = CONFIGS.map((_, i) => CONFIGS[(i + r) % CONFIGS.length]!);
      for (const key of order) {
        const c = configOf(key, policies);
        log(`round ${r + 1}/${ROUNDS}: ${LABELS[key]}: applying`);
        await setAttached(c.refs);
        await settle(c.rules, undefined, c.mark);
        const s = await measure();
        samples[key].push(s);
        log(`round ${r + 1}/${ROUNDS}: ${LABELS[key]}: ${s.gbps.toFixed(2)} Gbit/s, ${s.connSeq.toFixed(0)} conn/s (1 client), ${s.connConc.toFixed(0)} conn/s (${CONCURRENCY} clients)`);
      }
      if (UPDATE) {
        log(`round ${r + 1}/${ROUNDS}: policy update`);
        const u = await measureUpdate(policies);
        updates.push(u);
        log(`round ${r + 1}/${ROUNDS}: attach ${u.attach.ms.toFixed(0)} ms, deny ${u.deny.ms.toFixed(0)} ms, update ${u.update.ms.toFixed(0)} ms`);
        if (r === ROUNDS - 1) nft = await nftLoadTimes();
      }
    }
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    await cleanup();
  }

  const S = Object.fromEntries(CONFIGS.map((k) => [k, summarize(samples[k])])) as Partial<Record<ConfigKey, Record<keyof Sample, number>>>;
  const ratio = (k: ConfigKey, m: keyof Sample) => (S.a ? Math.round((S[k]![m] / S.a[m]) * 1000) / 1000 : NaN);
  const ratios = Object.fromEntries(CONFIGS.map((k) => [k, { gbps: ratio(k, 'gbps'), connSeq: ratio(k, 'connSeq'), connConc: ratio(k, 'connConc') }])) as Partial<
    Record<ConfigKey, { gbps: number; connSeq: number; connConc: number }>
  >;
  // Medians per transition: end to end, API, and per agent its passes' start, end and busy time.
  const U = updates.length
    ? (Object.fromEntries(
        TRANSITIONS.map((t) => [
          t,
          {
            ms: round1(median(updates.map((u) => u[t].ms).filter((x) => !Number.isNaN(x)))),
            notCut: updates.filter((u) => u[t].notCut).length,
            apiMs: round1(median(updates.map((u) => u[t].apiMs))),
            agents: Object.fromEntries(['h1', 'h2'].map((h) => [h, summarize(updates.map((u) => u[t].agents[h]!))])),
          },
        ]),
      ) as Record<Transition, Omit<TransitionSample, 'notCut'> & { notCut: number }>)
    : undefined;
  const TARGET_RATIO = 0.95;
  const TARGET_UPDATE_MS = 500;
  const meets = (k: ConfigKey) => (ratios[k] && S.a ? Object.values(ratios[k]).every((x) => x >= TARGET_RATIO) : undefined);
  const verdicts = {
    c_last: meets('c_last'),
    c_first: meets('c_first'),
    update: U ? U.attach.ms < TARGET_UPDATE_MS && U.update.ms < TARGET_UPDATE_MS : undefined,
  };
  const result = {
    rounds: ROUNDS,
    iperfSeconds: SECONDS,
    connSeconds: CONN_SECONDS,
    concurrency: CONCURRENCY,
    rules: RULES,
    perPolicy: PER_POLICY,
    filler: FILLER,
    probeIntervalMs: INTERVAL_MS,
    medians: S,
    ratios,
    update: U ?? null,
    nftLoad: nft ? { ...nft, createMs: round1(nft.createMs), replaceMs: round1(nft.replaceMs) } : null,
    targets: { ratio: TARGET_RATIO, updateMs: TARGET_UPDATE_MS },
    pass: verdicts,
    wallSeconds: Math.round((Date.now() - started) / 1000),
    samples,
    updateSamples: updates,
  };

  const f = (x: number, d = 2, w = 9) => x.toFixed(d).padStart(w);
  const ok = (b: boolean | undefined) => (b === undefined ? 'not measured' : b ? 'PASS' : 'FAIL');
  if (CONFIGS.length) {
    console.log(`medians of ${ROUNDS} rounds (configurations rotated each round); iperf3 1 stream ${SECONDS} s; new connections ${CONN_SECONDS} s each; ${RULES} rules as ${Math.ceil((RULES - 1) / PER_POLICY)} + 1 policies, fillers ${FILLER}`);
    console.log(`                                   Gbit/s  ratio    conn/s  ratio   conn/s×${CONCURRENCY}  ratio   p50 µs  p99 µs`);
    for (const k of CONFIGS) {
      const s = S[k]!;
      const q = ratios[k]!;
      console.log(`${LABELS[k].padEnd(32)} ${f(s.gbps)} ${f(q.gbps, 3, 6)} ${f(s.connSeq, 0)} ${f(q.connSeq, 3, 6)} ${f(s.connConc, 0, 10)} ${f(q.connConc, 3, 6)} ${f(s.connP50Us, 0, 8)} ${f(s.connP99Us, 0, 7)}`);
    }
    console.log('packets through red\'s policy chains per new connection (median; path: h1/pol_out, h2/pol_in):');
    for (const k of CONFIGS) {
      const keys = Object.keys(samples[k][0]?.chainPacketsPerConn ?? {});
      const per = keys.map((c) => `${c} ${median(samples[k].map((x) => x.chainPacketsPerConn[c] ?? 0)).toFixed(2)}`);
      console.log(`  ${LABELS[k].padEnd(30)} ${per.join('  ') || '(no chains)'}`);
    }
  }
  if (CONFIGS.length) console.log(`target: (c) >= ${TARGET_RATIO} of (a) in throughput and connection rate: match last ${ok(verdicts.c_last)}, match first ${ok(verdicts.c_first)}`);
  if (U) {
    console.log(`policy update, ${RULES} rules on red (end to end: API call to the probe flow changing, ${INTERVAL_MS} ms probes):`);
    const what: Record<Transition, string> = {
      attach: `attach (${Math.ceil((RULES - 1) / PER_POLICY)} ref-updates)`,
      deny: 'replace, flow denied',
      update: 'replace, flow passes again',
    };
    for (const t of TRANSITIONS) {
      const a = U[t].agents;
      const agent = (h: string) => `${h} ${a[h]!.passes} pass${a[h]!.passes === 1 ? '' : 'es'} ${a[h]!.startMs.toFixed(0)}..${a[h]!.endMs.toFixed(0)} ms (busy ${a[h]!.busyMs.toFixed(0)})`;
      console.log(`  ${what[t].padEnd(28)} ${f(U[t].ms, 0, 7)} ms   API ${U[t].apiMs.toFixed(0)} ms; agents' reconciles: ${agent('h1')}, ${agent('h2')}`);
      if (U[t].notCut) console.log(`    in ${U[t].notCut} of ${updates.length} rounds the established flow was NOT cut by the deny (not in the median)`);
    }
    console.log(`  target < ${TARGET_UPDATE_MS} ms (attach and update): ${ok(verdicts.update)}`);
  }
  if (nft) console.log(`nft -f of the agent's script for red (${nft.rules} rules, 2 chains) in a scratch namespace: new ${nft.createMs.toFixed(0)} ms, flush+add ${nft.replaceMs.toFixed(0)} ms (${nft.scriptLines} lines)`);
  console.log(`wall time ${result.wallSeconds} s`);
  if (asJson) console.log(JSON.stringify(result));
}

await main();
