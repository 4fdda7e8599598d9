// Output for people (aligned tables) or scripts (-o json).

export type OutputFormat = 'table' | 'json';

export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cells = rows.map((r) => columns.map((c) => format(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const row of cells) console.log(line(row));
}

function format(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) return v.length ? v.map(format).join(',') : '-';
  return String(v);
}

export function emit(format: OutputFormat, data: unknown, rows: Record<string, unknown>[], columns: string[]): void {
  if (format === 'json') console.log(JSON.stringify(data, null, 2));
  else printTable(rows, columns);
}
