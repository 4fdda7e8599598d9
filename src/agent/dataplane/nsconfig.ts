// Workload-side configuration (inside each workload's namespace) through one long-lived
// helper, lib/nsconfig.py, which enters the namespace and speaks netlink: one `ip -n NS`
// process per workload costs milliseconds each, which a thousand attaches cannot afford.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineHelper } from './line-helper.js';

export interface WorkloadConfig {
  /** Names the workload in the errors (its interface's uuid). */
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
  private readonly helper = new LineHelper<{ error: string | null }>('python3', [SCRIPT]);

  /** Configures every workload; resolves with the errors by id (absent: success). */
  async configure(items: WorkloadConfig[]): Promise<Map<string, string>> {
    const errors = new Map<string, string>();
    await Promise.all(
      items.map(async (item) => {
        const answer = await this.helper.request(item);
        const error = answer instanceof Error ? answer.message : answer.error;
        if (error) errors.set(item.id, error);
      }),
    );
    return errors;
  }

  close(): void {
    this.helper.close();
  }
}
