// A long-lived helper process speaking JSON lines: one request per line, one answer per
// line carrying the request's id (lib/nsconfig.py, lib/nft.py). It starts on first use;
// when it exits, what was in flight fails and the next request starts a new one.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import readline from 'node:readline';

interface Running<Answer> {
  child: ChildProcessWithoutNullStreams;
  /** Its requests in flight, by id. */
  waiting: Map<number, (answer: Answer | Error) => void>;
}

export class LineHelper<Answer extends object> {
  private running: Running<Answer> | undefined;
  private seq = 0;

  constructor(
    private readonly command: string,
    private readonly args: string[],
  ) {}

  /** Sends `request` (with an `id` added); resolves with its answer, or an Error when the helper could not answer. */
  request(request: object): Promise<Answer | Error> {
    const { child, waiting } = this.ensure();
    const id = ++this.seq;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      child.stdin.write(JSON.stringify({ ...request, id }) + '\n');
    });
  }

  close(): void {
    this.running?.child.kill();
    this.running = undefined;
  }

  private ensure(): Running<Answer> {
    if (this.running) return this.running;
    const child = spawn(this.command, this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const running: Running<Answer> = { child, waiting: new Map() };
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let answer: Answer & { id: number };
      try {
        answer = JSON.parse(line) as Answer & { id: number };
      } catch {
        // Not the protocol: nothing it says can be trusted any more.
        stderr += `\nanswered: ${line.slice(0, 200)}`;
        child.kill();
        return;
      }
      running.waiting.get(answer.id)?.(answer);
      running.waiting.delete(answer.id);
    });
    child.stdin.on('error', () => undefined);
    const fail = (message: string) => {
      if (this.running === running) this.running = undefined;
      for (const done of running.waiting.values()) done(new Error(message));
      running.waiting.clear();
    };
    child.on('exit', (code) => fail(`${this.args.at(-1) ?? this.command} exited (${code}): ${stderr.trim()}`));
    child.on('error', (e) => fail(`cannot run ${this.command} ${this.args.join(' ')}: ${e.message}`));
    this.running = running;
    return running;
  }
}
