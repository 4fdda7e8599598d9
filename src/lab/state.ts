// The lab's state file (what `lab up` built and the PIDs it started) and one record per
// workload. Workloads have a file each so that concurrent `lab workload add`s never
// overwrite each other: creating the file (O_EXCL) claims the name.

import fs from 'node:fs';
import path from 'node:path';
import { CliError } from '../cli/client.js';
import { LAB_ROOT, labDir, nameFlag, stateFile, workloadsDir } from './layout.js';
import type { ProcessRecord } from './processes.js';

export interface HostRecord {
  name: string;
  netns: string;
  underlayIp: string;
  prefixLen: number;
  agent?: ProcessRecord;
}

/** A control node: its namespace on the underlay, and its process. */
export interface ControlRecord {
  name: string;
  netns: string;
  underlayIp: string;
  prefixLen: number;
  process?: ProcessRecord;
}

export interface LabState {
  name: string;
  apiPort: number;
  createdAt: string;
  fabricNetns: string;
  server?: ProcessRecord;
  /** The flow collector (analytics API on 127.0.0.1:analyticsPort); missing in labs made before it existed. */
  analyticsPort?: number;
  collector?: ProcessRecord;
  /** Missing in labs made before control nodes existed (`lab up` adds them). */
  controls?: ControlRecord[];
  hosts: HostRecord[];
  /** With `--gateway`: host gw (its agent a gateway) and the outside namespace behind it. */
  gateway?: HostRecord & { outsideNetns: string };
}

export interface WorkloadRecord {
  name: string;
  host: string;
  network: string;
  /** "adding" until the attach completed: a crash in between leaves a record `lab down` still finds. */
  status: 'adding' | 'attached';
  createdAt: string;
  /** Its address comes from its own DHCP client. */
  dhcp?: boolean;
  vmiUuid?: string;
  hostIf?: string;
  address?: string;
  prefixLen?: number;
  mac?: string;
  /** A program kept running in the workload (`lab workload add ... -- COMMAND`, topology files), and its process. */
  command?: string[];
  process?: ProcessRecord;
}

/** Writes through a temporary file and a rename: a crash never leaves half a file. */
function writeJson(file: string, data: unknown, flag: 'w' | 'wx' = 'w'): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (flag === 'wx') {
    fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n', { flag });
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`${file}: ${(e as Error).message}`);
  }
}

export const readState = (lab: string): LabState | undefined => readJson<LabState>(stateFile(lab));
export const writeState = (state: LabState): void => writeJson(stateFile(state.name), state);

export function requireState(lab: string): LabState {
  const s = readState(lab);
  if (!s) throw new CliError(`there is no lab '${lab}' (start it with: cirrus lab up --hosts N${nameFlag(lab)})`);
  return s;
}

const workloadFile = (lab: string, name: string): string => path.join(workloadsDir(lab), `${name}.json`);

export function listWorkloads(lab: string): WorkloadRecord[] {
  let files: string[];
  try {
    files = fs.readdirSync(workloadsDir(lab));
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.json'))
    .map((f) => readJson<WorkloadRecord>(path.join(workloadsDir(lab), f)))
    .filter((w): w is WorkloadRecord => w !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

export const readWorkload = (lab: string, name: string): WorkloadRecord | undefined => readJson<WorkloadRecord>(workloadFile(lab, name));

/** Records a new workload; false when the lab already has one of that name. */
export function claimWorkload(lab: string, rec: WorkloadRecord): boolean {
  try {
    writeJson(workloadFile(lab, rec.name), rec, 'wx');
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

export const updateWorkload = (lab: string, rec: WorkloadRecord): void => writeJson(workloadFile(lab, rec.name), rec);
export const forgetWorkload = (lab: string, name: string): void => fs.rmSync(workloadFile(lab, name), { force: true });

/** Whether `pid` is a live cirrus process (a lock holder's start time is not recorded). */
function isCirrusPid(pid: number): boolean {
  try {
    return pid > 0 && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cirrus');
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding the lab's lock (`lab up` and `lab down` must not interleave). A lock
 * left behind by a process that is gone is taken over.
 */
export async function withLabLock<T>(lab: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(labDir(lab), 'lock');
  fs.mkdirSync(labDir(lab), { recursive: true });
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const holder = Number(readJson<number>(lock));
    if (isCirrusPid(holder)) throw new CliError(`lab '${lab}' is busy: another 'cirrus lab' command (pid ${holder}) is running`);
    fs.writeFileSync(lock, String(process.pid));
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
    // A lab left with nothing (a refused `up`, a `down`) keeps no directory, nor LAB_ROOT when it was the last.
    for (const dir of [labDir(lab), LAB_ROOT]) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // not empty (or already gone)
      }
    }
  }
}
