// A lab for an e2e test file: a unique name (workload namespaces are global, so they carry
// it too), the CLI pointed at its API, and its lifecycle: up before the tests, down after
// them with the servers the tests started, pass or fail.

import { type ChildProcess, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CIRRUS, freePort } from './server.js';

const run = promisify(execFile);

export class TestLab {
  readonly name: string;
  api = '';
  /** The lab's analytics API. */
  analytics = '';
  /** Processes the tests started inside workloads (killed at the end). */
  readonly servers: ChildProcess[] = [];

  constructor(prefix: string) {
    this.name = `${prefix}${process.pid}`;
  }

  /** A workload's namespace name (what `lab workload add` is given). */
  readonly w = (s: string): string => `${this.name}${s}`;

  readonly cirrus = (...args: string[]) => run(process.execPath, [CIRRUS, ...args], { timeout: 120_000, env: { ...process.env, CIRRUS_API: this.api } });

  readonly add = (w: string, host: string, network: string, ip: string) => this.cirrus('lab', 'workload', 'add', this.w(w), '--host', host, '--network', network, '--ip', ip, '--name', this.name);

  async up(hosts: number, opts: { gateway?: boolean } = {}): Promise<void> {
    const port = await freePort();
    const analyticsPort = await freePort();
    this.api = `http://127.0.0.1:${port}`;
    this.analytics = `http://127.0.0.1:${analyticsPort}`;
    await this.cirrus('lab', 'up', '--hosts', String(hosts), '--name', this.name, '--api-port', String(port), '--analytics-port', String(analyticsPort), ...(opts.gateway ? ['--gateway'] : []));
  }

  async down(): Promise<void> {
    for (const s of this.servers) s.kill();
    await this.cirrus('lab', 'down', '--name', this.name).catch(() => undefined);
  }
}
