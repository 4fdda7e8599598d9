// `cirrus agent --control`: the list of control nodes, as given on the command line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseControlUrls } from '../../src/cli/commands/agent.js';

test('control node lists: URLs kept, bare hosts get ws:// and port 5269, bad entries refused', () => {
  const cases: [string, string[] | RegExp][] = [
    ['ws://10.0.0.1:5269', ['ws://10.0.0.1:5269']],
    ['wss://c1:443,ws://c2:5269', ['wss://c1:443', 'ws://c2:5269']],
    ['c1, c2:6000', ['ws://c1:5269', 'ws://c2:6000']],
    ['', /at least one control node/],
    [' , ', /at least one control node/],
    ['ws://[bad', /not a ws:\/\/ or wss:\/\/ URL/],
  ];
  for (const [input, want] of cases) {
    if (Array.isArray(want)) assert.deepEqual(parseControlUrls(input), want, input);
    else assert.throws(() => parseControlUrls(input), want, input);
  }
});
