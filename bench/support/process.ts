// A `bin/cirrus` role as a child process of the benchmark: started, waited for until it
// prints its banner, measured (/proc/PID/status), and stopped by its PID (SIGTERM, then
// SIGKILL after a grace period). node itself is the child, so the PID is the server's.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { CIRRUS } from '../../test/support/server.js';

export interface CirrusProcess {
  proc: ChildProcess;
  pid: number;
  /** The banner's match. */
  match: RegExpExecArray;
  /** The last 64 KB of its stdout and stderr, for error messages. */
  output(): string;
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const KEEP = 64 * 1024;

/**
 * Runs `node [nodeArgs] bin/cirrus [args]` and waits until its output matches `banner`.
 * With `logFile`, all of its output is also written there.
 */
export async function startCirrus(args: string[], banner: RegExp, nodeArgs: string[] = [], timeoutMs = 30_000, logFile?: string): Promise<CirrusProcess> {
  const proc = spawn(process.execPath, [...nodeArgs, CIRRUS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logFile ? fs.createWriteStream(logFile) : undefined;
  let out = '';
  const onData = (chunk: Buffer) => {
    log?.write(chunk);
    out += chunk.toString();
    if (out.length > 2 * KEEP) out = out.slice(-KEEP);
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) =>
    proc.once('close', () => {
      // 'close': its output is all read by then.
      if (log) log.end(resolve);
      else resolve();
    }),
  );
  const stop = async (graceMs = 10_000) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
  };
  let match: RegExpExecArray;
  try {
    match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = banner.exec(out);
        if (m) {
          clearInterval(timer);
          resolve(m);
        }
      }, 20);
      setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`cirrus ${args[0] ?? ''} did not start within ${timeoutMs} ms:\n${out.slice(-4000)}`));
      }, timeoutMs).unref();
      void exited.then(() => {
        clearInterval(timer);
        reject(new Error(`cirrus ${args.join(' ')} exited (${proc.exitCode ?? proc.signalCode}):\n${out.slice(-4000)}`));
      });
    });
  } catch (e) {
    await stop(2_000);
    throw e;
  }
  return {
    proc,
    pid: proc.pid!,
    match,
    output: () => out.slice(-KEEP),
    exited: () => proc.exitCode !== null || proc.signalCode !== null,
    stop,
  };
}

export interface Memory {
  /** Resident set now, in MiB. */
  rssMiB: number;
  /** Peak resident set since the process started (VmHWM), in MiB. */
  hwmMiB: number;
}

/** The process's resident memory from /proc/PID/status, or undefined (gone, or not Linux). */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const rss = kib('VmRSS');
    const hwm = kib('VmHWM');
    if (Number.isNaN(rss) || Number.isNaN(hwm)) return undefined;
    return { rssMiB: rss / 1024, hwmMiB: hwm / 1024 };
  } catch {
    return undefined;
  }
}
