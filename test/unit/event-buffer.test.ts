// What the agent makes of lib/nlrcvbuf.py's output (the helper itself runs against the
// kernel in test/agent/ct-event-buffer.test.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHelperOutput } from '../../src/agent/flows/event-buffer.js';

test('the event buffer: SO_RCVBUF as read back, the smallest of several sockets; anything else is an error naming the output', () => {
  const line = (sockets: unknown) => `${JSON.stringify({ pid: 7, sockets })}\n`;
  assert.deepEqual(parseHelperOutput(line([{ fd: 4, inode: 9, groups: '00000004', rcvbuf: 16777216 }])), { bytes: 16777216 });
  assert.deepEqual(parseHelperOutput(line([{ rcvbuf: 16777216 }, { rcvbuf: 212992 }])), { bytes: 212992 });
  for (const bad of ['', 'not json', line([]), line([{ rcvbuf: '16' }]), line([{ rcvbuf: 0 }]), line([{ fd: 4 }]), '{"pid": 7}', 'null']) {
    const r = parseHelperOutput(bad);
    assert.ok('error' in r && r.error.startsWith('nlrcvbuf.py: unexpected output'), `${JSON.stringify(bad)}: ${JSON.stringify(r)}`);
  }
});
