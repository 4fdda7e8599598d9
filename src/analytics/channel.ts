// The agent → collector flow channel, over a WebSocket at CHANNEL_PATH with the agents'
// token (Authorization: Bearer). Every sample a sender ships carries a sequence number
// (per sender run, its `source`); the collector answers each batch, once it is durable,
// with the highest number it holds of that source, and says the same on connect, so a
// sender resends exactly what the collector does not have (a restart loses and doubles
// nothing).
//
//   sender → collector: {type:"hello", source, host}
//   collector → sender: {type:"welcome", held}
//   sender → collector: {type:"batch", first, count, dict, cols}   (schema.ts FlowBatch; first = seq of row 0)
//   collector → sender: {type:"ack", held}

import { type FlowBatch, checkBatch } from './schema.js';

export const CHANNEL_PATH = '/analytics/agent';
/** Rows per batch: large enough to amortise, small enough for a frame. */
export const MAX_BATCH = 4096;
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
export interface BatchMessage extends FlowBatch {
  type: 'batch';
  first: number;
}
export interface Ack {
  type: 'ack';
  held: number;
}

const SOURCE = /^[A-Za-z0-9._:-]{1,128}\/[0-9a-f]{8}$/;

/** A message from a sender; throws with what is wrong. */
export function parseSenderMessage(text: string): Hello | BatchMessage {
  let m: unknown;
  try {
    m = JSON.parse(text);
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
  if (type === 'batch') {
    const b = m as Partial<BatchMessage>;
    if (!Number.isSafeInteger(b.first) || b.first! < 1) throw new Error('batch: first must be a sequence number (1 or more)');
    const why = checkBatch(b, MAX_BATCH);
    if (why) throw new Error(why);
    return b as BatchMessage;
  }
  throw new Error(`unknown message type ${JSON.stringify(type)}`);
}

/** A message from the collector; throws with what is wrong. */
export function parseCollectorMessage(text: string): Welcome | Ack {
  const m = JSON.parse(text) as Partial<Welcome | Ack>;
  if ((m.type === 'welcome' || m.type === 'ack') && Number.isSafeInteger(m.held) && m.held! >= 0) return m as Welcome | Ack;
  throw new Error(`unexpected message from the collector: ${text.slice(0, 100)}`);
}
