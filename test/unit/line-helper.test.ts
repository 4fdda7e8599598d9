// LineHelper: a long-lived child answering JSON lines, matched by id; a dead child fails
// what was in flight and the next request starts a new one. `cat` answers each request
// with itself; `false` exits at once; a helper answering garbage is stopped.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineHelper } from '../../src/agent/dataplane/line-helper.js';

test('answers are matched to their requests, in flight together', async () => {
  const h = new LineHelper<{ id: number; n: number }>('cat', []);
  try {
    const answers = await Promise.all([1, 2, 3].map((n) => h.request({ n })));
    assert.deepEqual(answers.map((a) => (a instanceof Error ? a.message : a.n)), [1, 2, 3]);
  } finally {
    h.close();
  }
});

test('a helper that exits fails its requests with why; the next request starts it again', async () => {
  const dead = new LineHelper<object>('false', []);
  const a = await dead.request({});
  assert.ok(a instanceof Error && /false exited \(1\)/.test(a.message), String(a));
  const garbled = new LineHelper<object>('python3', ['-c', "import sys; print('not json', flush=True); sys.stdin.read()"]);
  const g = await garbled.request({});
  assert.ok(g instanceof Error && /answered: not json/.test(g.message), String(g));
  const missing = new LineHelper<object>('/nonexistent/helper', []);
  const b = await missing.request({});
  assert.ok(b instanceof Error && /cannot run \/nonexistent\/helper/.test(b.message), String(b));
  const h = new LineHelper<{ n: number }>('cat', []);
  try {
    assert.equal(((await h.request({ n: 1 })) as { n: number }).n, 1);
    h.close();
    assert.equal(((await h.request({ n: 2 })) as { n: number }).n, 2, 'closed, then started again by the next request');
  } finally {
    h.close();
  }
});
