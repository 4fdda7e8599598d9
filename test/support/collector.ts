// Starts the real `bin/cirrus collector` process on a data directory and port of the test's.

import { type ChildProcess, spawn } from 'node:child_process';
import { CIRRUS } from './server.js';

export interface RunningCollector {
  url: string;
  proc: ChildProcess;
  /** SIGTERM, or SIGKILL with `hard`; resolves once the process is gone. */
  stop(hard?: boolean): Promise<void>;
}

export async function startCollectorProcess(dataDir: string, port: number, tokenFile: string, extraArgs: string[] = []): Promise<RunningCollector> {
  const proc = spawn(process.execPath, [CIRRUS, 'collector', '--data', dataDir, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start within 15 s:\n${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /flow channel on (http:\/\/[^\s,]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited with ${code}:\n${output}`));
    });
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    url,
    proc,
    async stop(hard = false) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
      await exited;
    },
  };
}
