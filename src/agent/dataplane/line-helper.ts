// A long-lived helper process speaking JSON lines: one request per line, one answer per
// line carrying the request's id (lib/nsconfig.py, lib/nft.py). It starts on first use;
// when it exits, what was in flight fails and the next request starts a new one.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import readline from 'node:readline';

export class LineHelper<Answer extends object> {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly waiting = new Map<number, (answer: Answer | Error) => void>();
  private seq = 0;

  constructor(
    private readonly command: string,
    private readonly args: string[],
  ) {}

  /** Sends `request` (with an `id` added); resolves with its answer, or an Error when the helper could not answer. */
  request(request: object): Promise<Answer | Error> {
    const child = this.ensure();
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      child.stdin.write(JSON.stringify({ ...request, id }) + '\n');
    });
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
  }

  private ensure(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn(this.command, this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer & { id: number };
      this.waiting.get(answer.id)?.(answer);
      this.waiting.delete(answer.id);
    });
    child.stdin.on('error', () => undefined);
    const fail = (message: string) => {
      if (this.child === child) this.child = undefined;
      for (const done of this.waiting.values()) done(new Error(message));
      this.waiting.clear();
    };
    child.on('exit', (code) => fail(`${this.args.at(-1) ?? this.command} exited (${code}): ${stderr.trim()}`));
    child.on('error', (e) => fail(`cannot run ${this.command} ${this.args.join(' ')}: ${e.message}`));
    this.child = child;
    return child;
  }
}
