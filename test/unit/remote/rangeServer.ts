// A local HTTP server for the remote-scan tests (no outside network): serves files with single-range support
// (206 + Content-Range, 416), records every request (path, Range, Authorization), and can redirect, ignore
// Range, or answer JSON (the Hub API). Starts on 127.0.0.1 on a free port.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Logged { method: string; path: string; range?: string; authorization?: string; host?: string; bytes: number }

export type Route =
  | { file: string; ignoreRange?: boolean; etag?: string; /** the n-th request gets etags[n] (the last one after) */ etags?: string[]; served?: number }
  | { json: unknown; status?: number }
  | { redirect: string; status?: number }
  | { status: number };

export class RangeServer {
  readonly log: Logged[] = [];
  readonly routes = new Map<string, Route>();
  private server: http.Server | undefined;
  port = 0;

  get origin(): string { return `http://127.0.0.1:${this.port}`; }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Bytes of file bodies sent (what the client fetched). */
  bytesSent(prefix = ''): number { return this.log.filter((l) => l.path.startsWith(prefix)).reduce((a, l) => a + l.bytes, 0); }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.origin);
    const entry: Logged = { method: req.method ?? 'GET', path: url.pathname, range: req.headers.range, authorization: req.headers.authorization, host: req.headers.host, bytes: 0 };
    this.log.push(entry);
    const route = this.routes.get(url.pathname);
    if (!route) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found'); return; }
    if ('redirect' in route) { res.writeHead(route.status ?? 302, { location: route.redirect }); res.end(); return; }
    if ('json' in route) { const body = JSON.stringify(route.json); res.writeHead(route.status ?? 200, { 'content-type': 'application/json' }); res.end(body); return; }
    if (!('file' in route)) { res.writeHead(route.status); res.end(); return; }
    const size = fs.statSync(route.file).size;
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (route.etag) headers.etag = route.etag;
    if (route.etags?.length) { const n = route.served ?? 0; route.served = n + 1; headers.etag = route.etags[Math.min(n, route.etags.length - 1)]; }
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (!m || route.ignoreRange) {
      headers['content-length'] = String(size);
      res.writeHead(200, headers);
      const stream = fs.createReadStream(route.file);
      stream.on('data', (c) => { entry.bytes += c.length; });
      stream.pipe(res);
      res.on('close', () => stream.destroy());
      return;
    }
    let start: number, end: number;
    if (m[1] === '') { start = Math.max(0, size - Number(m[2])); end = size - 1; } else { start = Number(m[1]); end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1); }
    if (start >= size || start > end) { res.writeHead(416, { 'content-range': `bytes */${size}` }); res.end(); return; }
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
    headers['content-length'] = String(end - start + 1);
    res.writeHead(206, headers);
    const stream = fs.createReadStream(route.file, { start, end });
    stream.on('data', (c) => { entry.bytes += c.length; });
    stream.pipe(res);
  }
}

/** A forward proxy the way corporate proxies work for undici: CONNECT host:port opens a tunnel. Every tunnel goes
 *  to `to` (a local server), whatever host was asked, so a test can name a host that does not resolve. */
export class ConnectProxy {
  readonly asked: string[] = [];
  private server: http.Server | undefined;
  port = 0;
  constructor(private readonly to: () => number) {}
  get origin(): string { return `http://127.0.0.1:${this.port}`; }
  async start(): Promise<this> {
    const server = http.createServer((_req, res) => { res.writeHead(405); res.end(); });
    server.on('connect', (req: http.IncomingMessage, client: import('node:net').Socket, head: Buffer) => {
      this.asked.push(req.url ?? '');
      const upstream = net.connect(this.to(), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
