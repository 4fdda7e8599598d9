// The shared token agents present to control nodes, and the TLS material both sides may use.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Reads the token file; with `create`, makes one (random, mode 0600) when it is missing. */
export function loadToken(file: string, create: boolean): string {
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!token) throw new Error(`${file} is empty`);
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw new Error(`cannot read the control token: ${(e as Error).message}`);
    const token = crypto.randomBytes(32).toString('base64url');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another node made it meanwhile: theirs is the token.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadToken(file, false);
      throw err;
    }
    return token;
  }
}

/** Compares a presented `Authorization: Bearer` header with the token in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  const digest = (s: string) => crypto.createHash('sha256').update(s).digest();
  return crypto.timingSafeEqual(digest(presented), digest(token));
}

export interface TlsFiles {
  cert?: string;
  key?: string;
  /** CA that signs the peer's certificate (the server's for agents; agents' for mTLS). */
  ca?: string;
}

/** PEM contents of the given files (only the ones given). */
export function readTls(files: TlsFiles): { cert?: Buffer; key?: Buffer; ca?: Buffer } {
  const read = (what: string, f?: string) => {
    if (!f) return undefined;
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new Error(`cannot read the TLS ${what} ${f}: ${(e as Error).message}`);
    }
  };
  const cert = read('certificate', files.cert);
  const key = read('key', files.key);
  const ca = read('CA', files.ca);
  if (!!cert !== !!key) throw new Error('a TLS certificate needs its key, and a key its certificate');
  return { ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) };
}
