// Waiting for a condition by polling it against a deadline: the lab and the e2e tests
// synchronise with processes and the kernel this way, never with fixed sleeps.

export class DeadlineError extends Error {}

export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between attempts. */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns something other than undefined and returns that. A
 * check that throws ends the wait with its error (use it for "the process died").
 */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new DeadlineError(`${what}: not within ${Math.round(opts.timeoutMs / 100) / 10} s`);
    await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs ?? 100, Math.max(0, deadline - Date.now()))));
  }
}
