// The agent → collector flow channel, over a WebSocket at CHANNEL_PATH with the agents'
// token (Authorization: Bearer). Every sample a sender ships carries a sequence number
// (per sender run, its `source`); the collector answers each batch, once it is durable,
// with the highest number it holds of that source, and says the same on connect, so a
// sender resends exactly what the collector does not have (a restart loses and doubles
// nothing).
//
//   sender → collector: {type:"hello", source, host}
//   collector → sender: {type:"welcome", held}
//   sender → collector: a binary frame: a batch of samples, first = seq of row 0 (frame.ts)
//   collector → sender: {type:"ack", held}
//
// Control messages are JSON text; batches are binary frames, the only binary messages.

import { decodeFrame } from './frame.js';
import type { FlowBatch } from './schema.js';

export const CHANNEL_PATH = '/analytics/agent';
/** Rows per batch: large enough to amortise, small enough for a frame (~130 bytes a row). */
export const MAX_BATCH = 16384;
export const MAX_FRAME = 8 * 1024 * 1024;

export interface Hello {
  type: 'hello';
  source: string;
  host: string;
}
export interface Welcome {
  type: 'welcome';
  held: number;
}
export interface BatchMessage {
  type: 'batch';
  first: number;
  batch: FlowBatch;
}
export interface Ack {
  type: 'ack';
  held: number;
}

const SOURCE = /^[A-Za-z0-9._:-]{1,128}\/[0-9a-f]{8}$/;

/** A message from a sender (text: JSON; binary: a batch frame); throws with what is wrong. */
export function parseSenderMessage(data: Buffer, binary: boolean): Hello | BatchMessage {
  if (binary) return { type: 'batch', ...decodeFrame(data, MAX_BATCH) };
  let m: unknown;
  try {
    m = JSON.parse(data.toString('utf8'));
  } catch {
    throw new Error('not JSON');
  }
  const type = (m as { type?: unknown } | null)?.type;
  if (type === 'hello') {
    const h = m as Partial<Hello>;
    if (typeof h.source !== 'string' || !SOURCE.test(h.source)) throw new Error('hello: source must be HOST/8-hex-digits');
    if (typeof h.host !== 'string' || !h.host || h.host.length > 255) throw new Error('hello: host missing');
    return { type, source: h.source, host: h.host };
  }
  throw new Error(`unknown message type ${JSON.stringify(type)}`);
}

/** A message from the collector; throws with what is wrong. */
export function parseCollectorMessage(text: string): Welcome | Ack {
  const m = JSON.parse(text) as Partial<Welcome | Ack>;
  if ((m.type === 'welcome' || m.type === 'ack') && Number.isSafeInteger(m.held) && m.held! >= 0) return m as Welcome | Ack;
  throw new Error(`unexpected message from the collector: ${text.slice(0, 100)}`);
}
