// Workload-side configuration (inside each workload's namespace) through one long-lived
// helper, lib/nsconfig.py, which enters the namespace and speaks netlink: one `ip -n NS`
// process per workload costs milliseconds each, which a thousand attaches cannot afford.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface WorkloadConfig {
  /** Correlates the answer. */
  id: string;
  netns: string;
  ifname: string;
  mac: string;
  mtu: number;
  address: string;
  prefix: number;
  gateway?: string;
  /** Link only: the workload's DHCP client configures the address. */
  dhcp?: boolean;
}

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../lib/nsconfig.py');

export class NamespaceConfigurator {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly waiting = new Map<string, (error: string | null) => void>();

  /** Configures every workload; resolves with the errors by id (absent: success). */
  async configure(items: WorkloadConfig[]): Promise<Map<string, string>> {
    const child = this.ensure();
    const errors = new Map<string, string>();
    await Promise.all(
      items.map(
        (item) =>
          new Promise<void>((resolve) => {
            this.waiting.set(item.id, (error) => {
              if (error) errors.set(item.id, error);
              resolve();
            });
            child.stdin.write(JSON.stringify(item) + '\n');
          }),
      ),
    );
    return errors;
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
  }

  private ensure(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn('python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as { id: string; error: string | null };
      this.waiting.get(answer.id)?.(answer.error);
      this.waiting.delete(answer.id);
    });
    child.stdin.on('error', () => undefined);
    child.on('exit', (code) => {
      // Whatever was in flight fails; the next request starts a new helper.
      if (this.child === child) this.child = undefined;
      for (const done of this.waiting.values()) done(`namespace helper exited (${code}): ${stderr.trim()}`);
      this.waiting.clear();
    });
    child.on('error', (e) => {
      if (this.child === child) this.child = undefined;
      for (const done of this.waiting.values()) done(`cannot run python3 ${SCRIPT}: ${e.message}`);
      this.waiting.clear();
    });
    this.child = child;
    return child;
  }
}
