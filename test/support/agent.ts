// Hosts as network namespaces for agent tests: run commands, start a real `cirrus agent`
// inside a namespace, talk to it over its unix sockets, poll against deadlines, and
// remove every namespace of the run (and the processes left in them) afterwards.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { request } from '../../src/util/http-client.js';
import { CIRRUS } from './server.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell); never throws for a non-zero exit. */
export function sh(cmd: string, args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs `ip ARGS`; throws with ip's message when it fails. */
export async function ip(...args: string[]): Promise<string> {
  const r = await sh('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `ip -n NS -j ARGS`, parsed (an empty answer is []). */
export async function ipJson<T = Record<string, unknown>>(netns: string, ...args: string[]): Promise<T[]> {
  const out = await ip('-n', netns, '-j', ...args);
  return out.trim() ? (JSON.parse(out) as T[]) : [];
}

export async function addNetns(name: string): Promise<void> {
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
}

/** Kills what still runs in the namespaces starting with `prefix`, then deletes them. */
export async function removeNetns(prefix: string): Promise<void> {
  const names = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
  for (const ns of names) {
    const pids = (await sh('ip', ['netns', 'pids', ns])).stdout.split('\n').filter((p) => /^\d+$/.test(p));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sh('ip', ['netns', 'del', ns]);
  }
}

export async function pingOnce(netns: string, address: string): Promise<boolean> {
  return (await sh('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', '-q', address])).code === 0;
}

/** Calls `check` until it returns something other than undefined (or the deadline passes). */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

export interface Reply {
  status: number;
  /** Parsed JSON, or the text (XML). */
  body: any;
  text: string;
}

/** One HTTP request over a unix socket; the body is parsed when it is JSON. */
export async function unixCall(socketPath: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return (await request(`unix:${socketPath}`, method, path, body)) as Reply;
}

export interface AgentProcess {
  proc: ChildProcess;
  output(): string;
  /** SIGTERM (or SIGKILL with `hard`) and wait for the exit. */
  stop(hard?: boolean): Promise<void>;
}

/** Starts `cirrus agent` inside `netns` and waits for its banner. */
export function startAgentIn(netns: string, args: string[]): Promise<AgentProcess> {
  return startIn(netns, args, /cirrus agent .*: port API on/, 'agent');
}

export interface ControlProcess extends AgentProcess {
  /** Where agents connect (ws://HOST:PORT). */
  url: string;
}

/** Starts `cirrus control` inside `netns` (following the API at `api`) and waits for its banner. */
export async function startControlIn(netns: string, api: string, args: string[]): Promise<ControlProcess> {
  const p = await startIn(netns, ['--api', api, 'control', ...args], /cirrus control .*: agents on (ws\S+),/, 'control node');
  return { ...p, url: /agents on (ws\S+),/.exec(p.output())![1]! };
}

/** Starts a cirrus process in `netns` and resolves once its output matches `banner`. */
async function startIn(netns: string, args: string[], banner: RegExp, what: string): Promise<AgentProcess> {
  const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, CIRRUS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s:\n${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (banner.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${output}`));
    });
  });
  return {
    proc,
    output: () => output,
    async stop(hard = false) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
