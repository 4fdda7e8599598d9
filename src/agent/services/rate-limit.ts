// Token buckets by key (an interface and a service): `rate` packets per second on average,
// bursts up to `burst`. Pure: the caller passes the time.

/** The agent's default: packets per second per workload interface and service. */
export const DEFAULT_SERVICE_RATE = 100;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly rate: number,
    readonly burst: number = rate,
  ) {}

  /** Takes a token for `key` at time `now` (ms); false: over the rate. */
  take(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets keys not matching `keep` (interfaces that went away). */
  retain(keep: (key: string) => boolean): void {
    for (const k of this.buckets.keys()) if (!keep(k)) this.buckets.delete(k);
  }
}
