// The agent's DHCP service: transactions per second one agent sustains, and the time from
// `cirrus netns attach --dhcp` to a configured address with dhclient.
//
//   node dist/bench/dhcp.js [--workloads 64] [--seconds 5] [--rounds 10] [--json]
//
// On a one-host lab (`cirrus lab up`: two control nodes, the agent as deployed, with its
// default per-interface rate limit of 100 packets per second per service). Setup (not
// timed): --workloads namespaces attached with `dhcp: true` (the code of `netns attach`,
// in-process). Throughput: bench/support/dhcp_load.py runs full DISCOVER/OFFER/REQUEST/ACK
// transactions from every workload interface at once (one in flight per interface) for
// --seconds. Attach: for --rounds fresh namespaces, the `cirrus netns attach NS --dhcp`
// command (a CLI process) then `dhclient -1` with lib/dhclient-script, timed until dhclient
// is bound, once with dhclient's own configuration and once with lib/dhclient.conf.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../src/agent/dataplane/kernel.js';
import { ApiClient } from '../src/cli/client.js';
import { attach } from '../src/cli/commands/netns.js';
import { agentSocket } from '../src/lab/layout.js';
import { pollUntil } from '../src/util/poll.js';
import { CIRRUS, REPO, freePort } from '../test/support/server.js';
import { cpuSeconds } from './support/cpu.js';
import { flagNumber, flagSet } from './support/flags.js';
import { Samples } from './support/stats.js';

const W = flagNumber('--workloads', 64);
const SECONDS = flagNumber('--seconds', 5);
const ROUNDS = flagNumber('--rounds', 10);
const asJson = flagSet('--json');
const lab = `bd${process.pid}`.slice(0, 12);
const say = (line: string) => (asJson ? undefined : console.error(line));

async function must(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, undefined, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-bench-dhcp-'));
  const daemons: number[] = [];
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const env = { ...process.env, CIRRUS_API: api };
  try {
    say(`lab ${lab}: 1 host, API ${api}`);
    await must(process.execPath, [CIRRUS, 'lab', 'up', '--hosts', '1', '--name', lab, '--api-port', String(port)], env);
    await must(process.execPath, [CIRRUS, 'network', 'create', 'bench', '--subnet', '10.202.0.0/16'], env);
    const agentUrl = `unix:${agentSocket(lab, 'h1')}`;
    const agentPid = (JSON.parse(fs.readFileSync(`/run/cirrus/lab/${lab}/lab.json`, 'utf8')) as { hosts: { agent: { pid: number } }[] }).hosts[0]!.agent.pid;
    const ctx = { api: new ApiClient(api, 'the lab API'), project: 'admin', output: 'table' as const };
    const agent = new ApiClient(agentUrl, 'the agent');

    // Throughput.
    const ports: string[] = [];
    for (let i = 0; i < W; i++) {
      const ns = `${lab}w${i}`;
      const p = await attach(ctx, agent, { netns: ns, network: 'bench', ifname: 'eth0', dhcp: true });
      ports.push(`${ns}:${String(p['mac'])}`);
    }
    say(`${W} workloads attached with --dhcp; load for ${SECONDS} s`);
    const helper = helperPid(agentPid);
    const cpu0 = [cpuSeconds(agentPid) ?? 0, cpuSeconds(helper) ?? 0];
    const load = JSON.parse(await must('python3', [path.join(REPO, 'bench/support/dhcp_load.py'), String(SECONDS), ...ports])) as { transactions: number; timeouts: number; seconds: number; p50_ms: number; p99_ms: number };
    const cpu = [(cpuSeconds(agentPid) ?? 0) - cpu0[0]!, (cpuSeconds(helper) ?? 0) - cpu0[1]!].map((c) => Math.round((c / load.seconds) * 100) / 100);

    // Attach to address.
    const timings: Record<'default' | 'tuned', { attach: Samples; dhclient: Samples; total: Samples }> = {
      default: { attach: new Samples(ROUNDS), dhclient: new Samples(ROUNDS), total: new Samples(ROUNDS) },
      tuned: { attach: new Samples(ROUNDS), dhclient: new Samples(ROUNDS), total: new Samples(ROUNDS) },
    };
    for (const mode of ['default', 'tuned'] as const) {
      for (let i = 0; i < ROUNDS; i++) {
        const ns = `${lab}${mode[0]}${i}`;
        const files = ['-pf', path.join(dir, `${ns}.pid`), '-lf', path.join(dir, `${ns}.leases`), ...(mode === 'tuned' ? ['-cf', path.join(REPO, 'lib/dhclient.conf')] : [])];
        const t0 = performance.now();
        await must(process.execPath, [CIRRUS, 'netns', 'attach', ns, '--network', 'bench', '--dhcp', '--agent', agentUrl], env);
        const t1 = performance.now();
        await must('ip', ['netns', 'exec', ns, 'dhclient', '-1', '-sf', path.join(REPO, 'lib/dhclient-script'), ...files, 'eth0']);
        const t2 = performance.now();
        // The daemon writes its pid file just after dhclient -1 returned.
        daemons.push(await pollUntil(`${ns}'s dhclient pid file`, () => Number(fs.existsSync(path.join(dir, `${ns}.pid`)) ? fs.readFileSync(path.join(dir, `${ns}.pid`), 'utf8') : 0) || undefined, { timeoutMs: 5_000, intervalMs: 10 }));
        if (!/inet 10\.202\./.test(await must('ip', ['-n', ns, '-4', 'addr', 'show', 'eth0']))) throw new Error(`${ns}: no address after dhclient`);
        timings[mode].attach.add(t1 - t0);
        timings[mode].dhclient.add(t2 - t1);
        timings[mode].total.add(t2 - t0);
      }
    }
    const summary = (s: Samples) => {
      const x = s.summary();
      return { p50: Math.round(x.p50), max: Math.round(x.max) };
    };
    const result = {
      workloads: W,
      transactions_per_second: Math.round(load.transactions / load.seconds),
      transaction_ms: { p50: load.p50_ms, p99: load.p99_ms },
      timeouts: load.timeouts,
      /** CPU seconds per second during the load: the agent (Node) and its packet helper. */
      cpu: { agent: cpu[0], packet_helper: cpu[1] },
      attach_to_address_ms: Object.fromEntries((['default', 'tuned'] as const).map((m) => [m, { attach: summary(timings[m].attach), dhclient: summary(timings[m].dhclient), total: summary(timings[m].total) }])),
    };
    if (asJson) console.log(JSON.stringify(result));
    else {
      console.log(`DHCP transactions (DORA), ${W} interfaces, ${load.seconds} s: ${result.transactions_per_second} per second; p50 ${load.p50_ms} ms, p99 ${load.p99_ms} ms; ${load.timeouts} timeouts`);
      console.log(`CPU during the load: agent ${cpu[0]} s/s, packet helper ${cpu[1]} s/s`);
      for (const m of ['default', 'tuned'] as const) {
        const t = result.attach_to_address_ms[m];
        console.log(`netns attach --dhcp + dhclient -1 (${m === 'default' ? "dhclient's own configuration" : 'lib/dhclient.conf'}): total p50 ${t.total.p50} ms, max ${t.total.max} ms (attach p50 ${t.attach.p50} ms, dhclient p50 ${t.dhclient.p50} ms)   target < 1000 ms`);
      }
    }
  } finally {
    // dhclient went to the background once bound: its pid file named it.
    for (const pid of daemons) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const down = await run(process.execPath, [CIRRUS, 'lab', 'down', '--name', lab]);
    if (down.code !== 0) console.error(`lab down --name ${lab}: ${down.stderr.trim()}`);
    const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(lab));
    for (const n of left) await run('ip', ['netns', 'del', n]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The agent's packet helper (lib/packet-tap.py), a child of the agent. */
function helperPid(agent: number): number {
  const children = fs.readFileSync(`/proc/${agent}/task/${agent}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const pid = children.find((c) => fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('packet-tap.py'));
  if (!pid) throw new Error('the agent has no packet helper');
  return pid;
}

await main();
