// `lab down`: stops the processes the lab recorded, deletes its workload namespaces (from
// the records) and its host and fabric namespaces (from the records and by name, so a
// lab whose state was lost halfway still goes), then its directory. Deleting a namespace
// deletes its links, and with them the peers of its veths.

import fs from 'node:fs';
import { pollUntil } from '../util/poll.js';
import { checkLabName, isLabNetns, labDir } from './layout.js';
import { deleteNetns, listNetns, netnsExists, netnsPids } from './netns.js';
import { removeNetnsEtc } from './netns-etc.js';
import { AGENT_GRACE_MS, type ProcessRecord, type StopResult, pidAlive, stopProcess } from './processes.js';
import { stopProgram } from './programs.js';
import { listWorkloads, readState, withLabLock } from './state.js';
import type { Say } from './up.js';

const SERVER_GRACE_MS = 10_000;
const STRANGER_WAIT_MS = 1_000;

export interface DownResult {
  processes: { what: string; pid: number; result: StopResult }[];
  namespaces: string[];
  /** Processes the lab has no record of, still inside a namespace it deleted (left alone). */
  strangers: { netns: string; pids: number[] }[];
}

export async function labDown(name: string, say: Say): Promise<DownResult> {
  const lab = checkLabName(name);
  const dir = labDir(lab);
  const result: DownResult = { processes: [], namespaces: [], strangers: [] };
  const exists = fs.existsSync(dir) || listNetns().some((ns) => isLabNetns(lab, ns));
  if (!exists) return result;
  await withLabLock(lab, async () => {
    const state = readState(lab);
    const stop = async (what: string, rec: ProcessRecord | undefined, graceMs: number) => {
      if (!rec) return;
      const r = await stopProcess(rec, dir, graceMs);
      result.processes.push({ what, pid: rec.pid, result: r });
      if (r !== 'not running') say(`  ${what}: ${r} (pid ${rec.pid})`);
    };
    // Workloads' programs before all: deleting a namespace's name leaves its processes running.
    for (const w of listWorkloads(lab)) {
      if (!w.process) continue;
      const r = await stopProgram(w.name, w.process);
      result.processes.push({ what: `workload ${w.name}'s program`, pid: w.process.pid, result: r });
      if (r !== 'not running') say(`  workload ${w.name}'s program: ${r} (pid ${w.process.pid})`);
    }
    // Agents first: a server stopping under them only makes them retry.
    await Promise.all([...(state?.hosts ?? []), ...(state?.gateway ? [state.gateway] : [])].map((h) => stop(`agent ${h.name}`, h.agent, AGENT_GRACE_MS)));
    await Promise.all((state?.controls ?? []).map((c) => stop(`control node ${c.name}`, c.process, AGENT_GRACE_MS)));
    await stop('collector', state?.collector, SERVER_GRACE_MS);
    await stop('server', state?.server, SERVER_GRACE_MS);

    const recorded = [...listWorkloads(lab).map((w) => w.name), ...(state ? [state.fabricNetns, ...state.hosts.map((h) => h.netns), ...(state.controls ?? []).map((c) => c.netns), ...(state.gateway ? [state.gateway.netns, state.gateway.outsideNetns] : [])] : [])];
    const namespaces = [...new Set([...recorded, ...listNetns().filter((ns) => isLabNetns(lab, ns))])];
    const inside: DownResult['strangers'] = [];
    for (const ns of namespaces) {
      removeNetnsEtc(ns);
      if (!netnsExists(ns)) continue;
      const pids = await netnsPids(ns);
      if (pids.length) inside.push({ netns: ns, pids });
      await deleteNetns(ns);
      result.namespaces.push(ns);
    }
    if (result.namespaces.length) say(`  namespaces deleted: ${result.namespaces.join(' ')}`);
    // Some go by themselves as their links vanish (e.g. the `ip monitor` of an agent that was
    // SIGKILLed dies on its next write): report only those still there a moment later.
    const alive = () => inside.map((s) => ({ ...s, pids: s.pids.filter(pidAlive) })).filter((s) => s.pids.length);
    await pollUntil('strangers to exit', () => (alive().length ? undefined : true), { timeoutMs: STRANGER_WAIT_MS, intervalMs: 50 }).catch(() => undefined);
    result.strangers = alive();
    for (const s of result.strangers) say(`  warning: processes the lab has no record of still run in ${s.netns} (pids ${s.pids.join(' ')}): not stopped; they keep its links alive`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return result;
}
