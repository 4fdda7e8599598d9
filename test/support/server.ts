// Starts the real `bin/cirrus up` process on a free port and a fresh data directory.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CIRRUS = path.join(REPO, 'bin/cirrus');

export interface RunningServer {
  url: string;
  /** The all-in-one node's control node (ws://), its agents' token in dataDir/control.token. */
  controlUrl: string;
  /** The flow collector and analytics API (http://). */
  analyticsUrl: string;
  dataDir: string;
  proc: ChildProcess;
  /** Stops the process (SIGTERM, or SIGKILL with `hard`) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Stops the process and removes the data directory. */
  cleanup(): Promise<void>;
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cirrus-test-'));
}

/** `nodeArgs` go to node itself (e.g. --cpu-prof for the benchmarks). */
export async function startServer(dataDir = tempDataDir(), extraArgs: string[] = [], nodeArgs: string[] = []): Promise<RunningServer> {
  const proc = spawn(process.execPath, [...nodeArgs, CIRRUS, 'up', '--data', dataDir, '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--analytics-listen', '127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const [url, controlUrl, analyticsUrl] = await new Promise<[string, string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /config API on (http:\/\/[^\s,]+), control node on (ws:\/\/[^\s,]+), analytics on (http:\/\/[^\s,]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve([m[1]!, m[2]!, m[3]!]);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (hard = false) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  return {
    url,
    controlUrl,
    analyticsUrl,
    dataDir,
    proc,
    stop,
    async cleanup() {
      await stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A minimal JSON client returning status and body, for asserting on both. */
export async function call(base: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, text };
}

type Api = (method: string, p: string, body?: unknown) => ReturnType<typeof call>;

/**
 * One real server for the tests of a file: started before them (then `setup` runs, in the
 * same hook: separate root hooks are not ordered on Node 20), removed after them.
 */
export function useServer(setup?: (api: Api) => Promise<void>) {
  let srv: RunningServer | undefined;
  const api: Api = (method, p, body) => call(srv!.url, method, p, body);
  before(async () => {
    srv = await startServer();
    await setup?.(api);
  });
  after(async () => srv?.cleanup());
  return {
    get url(): string {
      return srv!.url;
    },
    api,
  };
}

/** A TCP port free on 127.0.0.1 right now (for servers told to listen on a fixed port). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bin/cirrus ARGS` against the API at `api`; a failure is returned with its exit code, not thrown. */
export function runCli(api: string, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CIRRUS, ...args], { env: { ...process.env, CIRRUS_API: api } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
