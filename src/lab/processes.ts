// The lab's long-running processes (the server, one agent per host): started detached
// with their output in a log file, recorded by PID and start time, and stopped only when
// /proc says the PID still is the process the lab started.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../util/poll.js';

/** bin/cirrus of this checkout (this file is dist/src/lab/processes.js). */
export const CIRRUS_BIN = fileURLToPath(new URL('../../../bin/cirrus', import.meta.url));

export interface ProcessRecord {
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused PID apart. */
  start: number;
  log: string;
}

/** Start time, state and process group of a PID, or undefined when there is no such process. */
function procStat(pid: number): { start: number; state: string; group: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, start: Number(fields[19]), group: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/** A process (not a zombie) with this PID exists. */
export function pidAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z';
}

/** The process group of a live (not zombie) PID. */
export function processGroup(pid: number): number | undefined {
  const st = procStat(pid);
  return st && st.state !== 'Z' ? st.group : undefined;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * True while the recorded process runs: same PID and start time, not a zombie, and a
 * command line naming cirrus and `marker` (the lab's directory, which every lab process
 * has in its arguments), or none yet.
 */
export function isRunning(rec: ProcessRecord | undefined, marker: string): rec is ProcessRecord {
  if (!rec) return false;
  const st = procStat(rec.pid);
  if (!st || st.state === 'Z' || st.start !== rec.start) return false;
  const cmd = cmdline(rec.pid);
  // Empty while the process is inside execve (`ip netns exec` becoming node): the same
  // PID and start time already say it is ours.
  return cmd === '' || (cmd.includes('cirrus') && cmd.includes(marker));
}

/**
 * Starts `cmd args` in its own session (it outlives the CLI and its terminal's signals),
 * stdout and stderr appended to `log`.
 */
export function spawnDetached(cmd: string, args: string[], log: string, cwd = '/'): ProcessRecord {
  const fd = fs.openSync(log, 'a');
  try {
    fs.writeSync(fd, `--- ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], cwd });
    if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
    child.unref();
    // uv_spawn returns after the fork: /proc/PID exists (at worst as a zombie we have not reaped yet).
    return { pid: child.pid, start: procStat(child.pid)?.start ?? 0, log };
  } finally {
    fs.closeSync(fd);
  }
}

/** SIGKILL costs an agent nothing (it flushes nothing, its registrations are on disk): a short grace will do. */
export const AGENT_GRACE_MS = 5_000;

export type StopResult = 'stopped' | 'killed' | 'not running';

/** SIGTERM, then SIGKILL if it is still there after `graceMs`; waits until it is gone. */
export async function stopProcess(rec: ProcessRecord | undefined, marker: string, graceMs = 5_000): Promise<StopResult> {
  if (!isRunning(rec, marker)) return 'not running';
  const gone = () => (isRunning(rec, marker) ? undefined : true);
  process.kill(rec.pid, 'SIGTERM');
  try {
    await pollUntil(`process ${rec.pid} to exit`, gone, { timeoutMs: graceMs, intervalMs: 50 });
    return 'stopped';
  } catch {
    if (isRunning(rec, marker)) process.kill(rec.pid, 'SIGKILL');
    await pollUntil(`process ${rec.pid} to die`, gone, { timeoutMs: 5_000, intervalMs: 20 });
    return 'killed';
  }
}

/** The last lines of a log, to explain why a process did not come up. */
export function logTail(log: string, lines = 15): string {
  try {
    return fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
