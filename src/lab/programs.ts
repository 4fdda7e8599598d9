// A workload's program (`lab workload add W ... -- COMMAND`, a topology file's `command:`):
// started detached in the workload's namespace and its own process group, in a directory
// of its own, its output in a log. The program is what is left of that group inside the
// namespace, whatever the leader exec'd or forked (shims, shells, daemons): that is
// what runs, and what is stopped.

import fs from 'node:fs';
import { pollUntil } from '../util/poll.js';
import { workloadLog, workloadRunDir } from './layout.js';
import { netnsPids } from './netns.js';
import { type ProcessRecord, type StopResult, processGroup, spawnDetached } from './processes.js';

async function programPids(workload: string, leader: ProcessRecord): Promise<number[]> {
  return (await netnsPids(workload)).filter((pid) => processGroup(pid) === leader.pid);
}

export async function programRunning(workload: string, leader: ProcessRecord | undefined): Promise<boolean> {
  return leader !== undefined && (await programPids(workload, leader)).length > 0;
}

export function startProgram(lab: string, workload: string, command: string[]): ProcessRecord {
  fs.mkdirSync(workloadRunDir(lab, workload), { recursive: true });
  return spawnDetached('ip', ['netns', 'exec', workload, ...command], workloadLog(lab, workload), workloadRunDir(lab, workload));
}

/** The program's directory and log (once the workload is gone). */
export function removeProgramFiles(lab: string, workload: string): void {
  fs.rmSync(workloadRunDir(lab, workload), { recursive: true, force: true });
  fs.rmSync(workloadLog(lab, workload), { force: true });
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone meanwhile
    }
  }
}

/** SIGTERM to the program's processes, SIGKILL to those left after `graceMs`; waits until none is left. */
export async function stopProgram(workload: string, leader: ProcessRecord | undefined, graceMs = 5_000): Promise<StopResult> {
  if (!leader) return 'not running';
  const pids = await programPids(workload, leader);
  if (!pids.length) return 'not running';
  const none = async () => ((await programPids(workload, leader)).length ? undefined : true);
  signal(pids, 'SIGTERM');
  try {
    await pollUntil(`${workload}'s program to exit`, none, { timeoutMs: graceMs, intervalMs: 50 });
    return 'stopped';
  } catch {
    signal(await programPids(workload, leader), 'SIGKILL');
    await pollUntil(`${workload}'s program to die`, none, { timeoutMs: 5_000, intervalMs: 50 });
    return 'killed';
  }
}
