// nft commands and scripts through one long-lived helper (lib/nft.py, on libnftables)
// instead of an `nft` process each: a reconcile pass reads two dozen sets and maps, and
// every process costs the agent a fork of itself (more as its memory grows).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineHelper } from './line-helper.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../lib/nft.py');

export interface NftResult {
  code: number;
  /** What nft prints (JSON when asked). */
  stdout: string;
  stderr: string;
}

export class NftSession {
  private readonly helper;

  /** `netns`: the helper works in that namespace instead of this process's. */
  constructor(netns?: string) {
    const argv = ['python3', SCRIPT];
    if (netns) argv.unshift('ip', 'netns', 'exec', netns);
    this.helper = new LineHelper<{ rc: number; out: string; err: string }>(argv[0]!, argv.slice(1));
  }

  /** Runs a command, or a script as one transaction (as `nft -f`); `json`: output as `nft -j`. */
  async run(cmd: string, json = false): Promise<NftResult> {
    const a = await this.helper.request({ cmd, json });
    return a instanceof Error ? { code: 1, stdout: '', stderr: a.message } : { code: a.rc, stdout: a.out, stderr: a.err };
  }

  close(): void {
    this.helper.close();
  }
}
