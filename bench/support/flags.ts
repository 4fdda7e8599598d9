// The benchmarks' command-line flags: `--name N`, `--name TEXT`, `--switch`.

const args = process.argv.slice(2);

/** A positive number, or the fallback; anything else is refused by name. */
export function flagNumber(name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: '${args[i + 1]}' is not a positive number`);
  return v;
}

export function flagString(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? String(args[i + 1]) : fallback;
}

export const flagSet = (name: string): boolean => args.includes(name);
