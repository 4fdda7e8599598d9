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

export interface HttpTarget {
  /** "http://127.0.0.1:8082" or "unix:/run/cirrus/api.sock". */
  base: string;
}

export function parseTarget(base: string): { socketPath?: string; host?: string; port?: number } {
  if (base.startsWith('unix:')) return { socketPath: base.slice(5) };
  const u = new URL(base);
  if (u.protocol !== 'http:') throw new Error(`'${base}' is not http://HOST:PORT or unix:/PATH`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

/** `signal` aborts the request (a long-poll, when its caller stops). */
export function requestJson<T = unknown>(base: string, method: string, path: string, body?: unknown, timeoutMs = 30_000, signal?: AbortSignal): Promise<T> {
  const target = parseTarget(base);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise<T>((resolve, reject) => {
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
          let data: unknown = undefined;
          try {
            data = text ? JSON.parse(text) : undefined;
          } catch {
            data = text;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(data as T);
          const message = (data as { error?: { message?: string } } | undefined)?.error?.message ?? text;
          reject(new HttpError(status, data, `${message} (HTTP ${status})`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${base} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
