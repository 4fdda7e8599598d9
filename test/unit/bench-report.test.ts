// The benchmark report's pure parts: statistics, the generated block of docs/benchmarks.md,
// the SVG chart, and iperf 2's CSV.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIperf2Csv } from '../../bench/support/measure.js';
import { niceCeil, renderChart } from '../../bench/support/report-chart.js';
import { BEGIN, END, type ReportData, type RowReport, figure, median, quantile, ratioTo, renderBlock, replaceBlock } from '../../bench/support/report-doc.js';

test('ratios, medians and quantiles; missing figures give NaN, not a number that looks measured', () => {
  assert.equal(ratioTo(9, 10), 0.9);
  assert.equal(ratioTo(1, 3), 0.333);
  assert.ok(Number.isNaN(ratioTo(undefined, 10)));
  assert.ok(Number.isNaN(ratioTo(5, 0)));
  assert.ok(Number.isNaN(ratioTo(5, NaN)));
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(quantile(xs, 0.5), 50);
  assert.equal(quantile(xs, 0.99), 99);
  assert.equal(quantile([7], 0.99), 7);
  assert.deepEqual(figure([5, 1, 3]), { median: 3, min: 1, max: 5 });
  assert.equal(figure([]), undefined);
});

const row = (id: string, over: Partial<RowReport> = {}): RowReport => ({
  id,
  label: id,
  how: `the ${id} path`,
  throughputTool: 'iperf3',
  gbps1: { median: 10, min: 9, max: 11 },
  gbps4: { median: 14, min: 13, max: 15 },
  rttP50Us: 100,
  rttP99Us: 150,
  connRate: { median: 9000, min: 8000, max: 9500 },
  ratios: { gbps1: 1, gbps4: 1, rttP50: 1, rttP99: 1, connRate: 1 },
  ...over,
});

const data = (rows: RowReport[]): ReportData => ({
  date: '2026-11-23',
  machine: ['2 CPUs'],
  commands: ['npm run bench'],
  settings: '3 rounds.',
  rows,
  notes: ['a note'],
  control: [{ what: 'ports', value: '2500 ports/s', target: '≥ 2,000', source: 'this run' }],
  noise: 'shared machine.',
  chart: 'benchmarks-report.svg',
});

test('the block: one table line per row with value and ratio, the chart linked, the iperf 2 footnote only when used', () => {
  const fip = row('fip', { label: 'Cirrus, ECMP floating IP', throughputTool: 'iperf 2', gbps4: undefined, ratios: { gbps1: 0.9, gbps4: NaN, rttP50: 1.2, rttP99: 1.3, connRate: 0.5 } });
  const block = renderBlock(data([row('vxlan'), fip]));
  assert.ok(block.startsWith(BEGIN) && block.endsWith(END));
  assert.match(block, /\| \*\*vxlan\*\* \| 10\.00 \(1\.00\) \| 14\.00 \(1\.00\) \| 100 \(1\.00\) \| 150 \(1\.00\) \| 9000 \(1\.00\) \|/);
  assert.match(block, /\| \*\*Cirrus, ECMP floating IP\*\* ¹ \| 10\.00 \(0\.90\) \| not measured \| 100 \(1\.20\) \|/);
  assert.match(block, /^¹ Throughput with iperf 2/m);
  assert.match(block, /!\[[^\]]+\]\(benchmarks-report\.svg\)/);
  assert.match(block, /\| ports \| 2500 ports\/s \| ≥ 2,000 \| this run \|/);
  assert.doesNotMatch(renderBlock(data([row('vxlan')])), /iperf 2/);
});

test('replaceBlock replaces the generated block and nothing else; a document without one gets it after its title', () => {
  const doc = `# Benchmarks\n\nHow to run.\n\n${BEGIN}\nold figures\n${END}\n\n## Older sections\ntext\n`;
  const out = replaceBlock(doc, `${BEGIN}\nnew\n${END}`);
  assert.equal(out, `# Benchmarks\n\nHow to run.\n\n${BEGIN}\nnew\n${END}\n\n## Older sections\ntext\n`);
  assert.equal(replaceBlock(out, `${BEGIN}\nnewer\n${END}`).split(BEGIN).length, 2, 'still one block after a second run');
  const fresh = replaceBlock('# Benchmarks\nintro\n', `${BEGIN}\nx\n${END}`);
  assert.equal(fresh, `# Benchmarks\n\n${BEGIN}\nx\n${END}\nintro\n`);
  assert.throws(() => replaceBlock(`# B\n${BEGIN}\nno end`, 'x'), /unbalanced/);
});

test('the chart: one bar per measured value, "not measured" for the others, axis end rounded up, text escaped', () => {
  assert.equal(niceCeil(0.7), 1);
  assert.equal(niceCeil(1.84), 2);
  assert.equal(niceCeil(12), 15);
  assert.equal(niceCeil(0), 1);
  const svg = renderChart({
    title: 'a <b> & c',
    subtitle: 's',
    series: [
      { name: 'one', color: '#111' },
      { name: 'two', color: '#222' },
    ],
    groups: [
      { label: 'x', values: [1, 0.5] },
      { label: 'y', values: [1.84, NaN] },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 3, 'three bars');
  assert.equal((svg.match(/not measured/g) ?? []).length, 1);
  assert.match(svg, /a &lt;b&gt; &amp; c/);
  assert.match(svg, />2<\/text>/, 'axis ends at 2 for a largest value of 1.84');
});

test("iperf 2's CSV: per-connection rates summed, a sum line left out, other lines ignored", () => {
  const csv = [
    '19700101000000,10.0.0.1,41104,10.96.0.10,5001,2,0.0-5.0,2741108796,2000000000',
    '19700101000000,10.0.0.1,41100,10.96.0.10,5001,1,0.0-5.0,1611399228,3000000000',
    '19700101000000,10.0.0.1,0,10.96.0.10,5001,-1,0.0-5.0,4352508024,5000000000',
    'WARNING: something',
    '',
  ].join('\n');
  assert.deepEqual(parseIperf2Csv(csv), { gbps: 5, connections: 2 });
  assert.deepEqual(parseIperf2Csv('connect failed: Connection refused\n'), { gbps: 0, connections: 0 });
});
