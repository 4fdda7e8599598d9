// Runs the real `bin/cirrus up` for a benchmark: its own temporary data directory, a free
// port, optional node flags (--cpu-prof), and a stop that signals only the process it
// spawned, by PID, then removes the data directory.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CIRRUS = path.join(REPO, 'bin/cirrus');

export interface BenchServer {
  url: string;
  pid: number;
  /** SIGTERM (a clean exit writes --cpu-prof profiles), SIGKILL after 10 s; removes the data. */
  stop(): Promise<void>;
}

export async function startBenchServer(nodeArgs: string[] = []): Promise<BenchServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-bench-'));
  const proc = spawn(process.execPath, [...nodeArgs, CIRRUS, 'up', '--data', dataDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = proc.pid;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const removeData = () => fs.rmSync(dataDir, { recursive: true, force: true });
  let output = '';
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${output}`)), 15_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const m = /config API on (http:\/\/\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${output}`));
      });
    });
  } catch (e) {
    if (pid !== undefined && proc.exitCode === null) process.kill(pid, 'SIGKILL');
    await exited;
    removeData();
    throw e;
  }
  // Keep draining the pipes: a full pipe would block the server's warnings.
  proc.stdout!.resume();
  proc.stderr!.on('data', (c: Buffer) => process.stderr.write(`[server] ${c.toString()}`));
  return {
    url,
    pid: pid!,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        process.kill(pid!, 'SIGTERM');
        const timer = setTimeout(() => {
          if (proc.exitCode === null && proc.signalCode === null) process.kill(pid!, 'SIGKILL');
        }, 10_000);
        await exited;
        clearTimeout(timer);
      }
      removeData();
    },
  };
}
