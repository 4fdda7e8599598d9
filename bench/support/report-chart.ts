// The report's chart: grouped horizontal bars, one group per data path, one bar per
// series (each a ratio to the baseline), a dashed line at 1.0. Plain SVG written by hand:
// nothing to render headless, no dependency, and the file diffs as text.

export interface ChartSeries {
  name: string;
  color: string;
}

export interface ChartGroup {
  label: string;
  /** One value per series; NaN or undefined: not measured (no bar). */
  values: (number | undefined)[];
}

export interface Chart {
  title: string;
  subtitle: string;
  series: ChartSeries[];
  groups: ChartGroup[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A "nice" axis end at or above `x`: 1, 1.5, 2, 2.5, 3, 4, 5 times a power of ten. */
export function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 10]) if (m * p >= x - 1e-12) return m * p;
  return 10 * p;
}

export function renderChart(c: Chart): string {
  const W = 900;
  const left = 210;
  const right = 60;
  const top = 70;
  const bar = 14;
  const gap = 3;
  const groupGap = 16;
  const groupH = c.series.length * (bar + gap) - gap;
  const plotH = c.groups.length * (groupH + groupGap);
  const H = top + plotH + 50;
  const finite = c.groups.flatMap((g) => g.values).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const max = niceCeil(Math.max(1, ...finite));
  const plotW = W - left - right;
  const x = (v: number) => left + (v / max) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<text x="${left}" y="40" fill="#555">${esc(c.subtitle)}</text>`);
  // Legend.
  let lx = left;
  for (const s of c.series) {
    out.push(`<rect x="${lx}" y="50" width="12" height="12" fill="${s.color}"/><text x="${lx + 16}" y="60">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  // Grid and axis.
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const v = (max * i) / ticks;
    const gx = x(v).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + plotH}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${gx}" y="${top + plotH + 16}" text-anchor="middle" fill="#555">${Number(v.toFixed(2))}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" fill="#555">ratio to the kernel VXLAN baseline (higher is better)</text>`);
  c.groups.forEach((g, gi) => {
    const gy = top + gi * (groupH + groupGap);
    out.push(`<text x="${left - 8}" y="${(gy + groupH / 2 + 4).toFixed(1)}" text-anchor="end">${esc(g.label)}</text>`);
    c.series.forEach((s, si) => {
      const v = g.values[si];
      const y = gy + si * (bar + gap);
      if (v === undefined || !Number.isFinite(v)) {
        out.push(`<text x="${left + 4}" y="${y + bar - 3}" fill="#999">not measured</text>`);
        return;
      }
      const w = Math.max(0.5, x(v) - left);
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${s.color}"><title>${esc(`${g.label}: ${s.name} ${v.toFixed(3)}`)}</title></rect>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + bar - 3}" fill="#333">${v.toFixed(2)}</text>`);
    });
  });
  const one = x(1).toFixed(1);
  out.push(`<line x1="${one}" y1="${top - 4}" x2="${one}" y2="${top + plotH}" stroke="#333" stroke-dasharray="4 3"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
