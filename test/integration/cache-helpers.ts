// The hub side of a real binary cache for tests: a signing key from
// `nix key generate-secret`, a static directory that `nix copy --to file://`
// writes, served over loopback HTTP with every request recorded (as nginx or
// any web server would serve it for the hub's "cache" service).
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const NIX_CMD = ['--extra-experimental-features', 'nix-command'];

export async function nixCmd(args: string[], env: Record<string, string>, input?: string): Promise<string> {
  const p = execFileP('nix', [...NIX_CMD, ...args], { env: { ...process.env, ...env }, maxBuffer: 16 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
}

/** A secret key file (mode 0600) and its public key "NAME:BASE64". */
export async function signingKey(file: string, name: string, env: Record<string, string>): Promise<string> {
  await writeFile(file, await nixCmd(['key', 'generate-secret', '--key-name', name], env), { mode: 0o600 });
  return (await nixCmd(['key', 'convert-secret-to-public'], env, await readFile(file, 'utf8'))).trim();
}

export interface StaticCache { server: http.Server; port: number; requests: string[]; close(): Promise<void> }

/** Serve DIR read-only on 127.0.0.1; `requests` lists every URL path asked for, in order. */
export async function serveCacheDir(dir: string): Promise<StaticCache> {
  const requests: string[] = [];
  const server = http.createServer(async (req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    requests.push(url);
    const file = path.join(dir, path.normalize(url).replace(/^(\.\.[/\\])+/, ''));
    const st = await stat(file).catch(() => null);
    if (!file.startsWith(dir) || !st?.isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-length': st.size });
    if (req.method === 'HEAD') { res.end(); return; }
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    server, port, requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The closure of a store path (nix-store -qR), dependencies first. */
export async function closureOf(storePath: string): Promise<string[]> {
  return (await execFileP('nix-store', ['-qR', storePath])).stdout.trim().split('\n');
}

/** Is the path valid in the local (/nix/store) database? */
export async function isValidPath(storePath: string): Promise<boolean> {
  return execFileP('nix-store', ['--check-validity', storePath]).then(() => true, () => false);
}

/** Delete paths from /nix/store (they must be unreferenced and unrooted), so a substitute is the only way back. */
export async function deleteFromStore(paths: string[], env: Record<string, string>): Promise<void> {
  await execFileP('nix-store', ['--delete', ...paths], { env: { ...process.env, ...env } });
}
