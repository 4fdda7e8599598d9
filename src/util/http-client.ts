// A small JSON-over-HTTP client for Cirrus's own services, over TCP (http://host:port) or
// a unix socket (unix:/path/to.sock): lab agents live in other network namespaces and
// reach the server through a socket file.

import http from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function parseTarget(base: string): { socketPath?: string; host?: string; port?: number } {
  if (base.startsWith('unix:')) return { socketPath: base.slice(5) };
  const u = new URL(base);
  if (u.protocol !== 'http:') throw new Error(`'${base}' is not http://HOST:PORT or unix:/PATH`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

export interface HttpReply {
  status: number;
  /** Parsed JSON, or the text when the answer is not JSON (Sandesh XML). */
  body: unknown;
  text: string;
}

/**
 * One request; answers of every status resolve. `body` may be a string sent as is (tests
 * send malformed JSON on purpose). `signal` aborts it (a long-poll, when its caller stops).
 */
export function request(base: string, method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<HttpReply> {
  const target = parseTarget(base);
  const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise<HttpReply>((resolve, reject) => {
    const req = http.request(
      {
        ...target,
        agent,
        method,
        path,
        headers: { 'content-type': 'application/json', ...(payload ? { 'content-length': payload.length } : {}) },
        timeout: timeoutMs,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${base} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A request whose success (2xx) is JSON; other statuses reject with HttpError. */
export async function requestJson<T = unknown>(base: string, method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<T> {
  const r = await request(base, method, path, body, timeoutMs, signal);
  if (r.status >= 200 && r.status < 300) return r.body as T;
  const message = (r.body as { error?: { message?: string } } | undefined)?.error?.message ?? r.text;
  throw new HttpError(r.status, r.body, `${message} (HTTP ${r.status})`);
}
