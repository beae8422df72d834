// The HTTP side of syncHttp.ts, on a worker thread: the scanner reads bytes synchronously (ByteSource), so the
// main thread posts a request and sleeps on a shared flag (Atomics.wait) while this thread fetches and posts the
// answer back on a MessagePort the main thread reads with receiveMessageOnPort.
//
// undici rather than Node's global fetch: Node 20's fetch reads no proxy settings; undici's EnvHttpProxyAgent
// reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and their lower-case forms) the way curl and pip do. undici's fetch
// follows the Fetch standard on redirects, which drops the Authorization header when a redirect leaves the origin
// (huggingface.co redirects file downloads to a CDN that must never see the token).
import { workerData, type MessagePort } from 'node:worker_threads';
import { EnvHttpProxyAgent, fetch } from 'undici';
import type { HttpRequest, HttpResponse } from './syncHttp';

const { port, flag } = workerData as { port: MessagePort; flag: Int32Array };
const dispatcher = new EnvHttpProxyAgent();

async function perform(req: HttpRequest): Promise<HttpResponse> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no answer from ${new URL(req.url).host} in ${req.timeoutMs} ms`)), req.timeoutMs);
  try {
    const res = await fetch(req.url, { headers: req.headers, redirect: 'follow', signal: ctl.signal, dispatcher });
    const headers: Record<string, string> = {};
    for (const name of ['content-range', 'content-length', 'content-type', 'content-encoding', 'etag', 'x-repo-commit', 'accept-ranges']) {
      const v = res.headers.get(name);
      if (v !== null) headers[name] = v;
    }
    // read at most maxBody bytes: a server that ignores Range must not make us hold a multi-GB body
    const chunks: Uint8Array[] = [];
    let got = 0, truncated = false;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        const room = req.maxBody - got;
        if (chunk.length > room) { chunks.push(chunk.subarray(0, room)); got += room; truncated = true; break; }
        chunks.push(chunk); got += chunk.length;
      }
    }
    if (truncated) ctl.abort();
    const body = new Uint8Array(got);
    let at = 0;
    for (const c of chunks) { body.set(c, at); at += c.length; }
    return { status: res.status, url: res.url || req.url, headers, body, truncated };
  } finally { clearTimeout(timer); }
}

function describe(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause ? `: ${err.cause.code ?? ''} ${err.cause.message ?? ''}`.trimEnd() : '';
  return `${err.message}${cause}`;
}

/** A batch (scattered local headers): up to PARALLEL requests in flight; each answer or error in its slot. */
const PARALLEL = 6;
async function performAll(reqs: HttpRequest[]): Promise<(HttpResponse | { error: string })[]> {
  const out: (HttpResponse | { error: string })[] = new Array(reqs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(PARALLEL, reqs.length) }, async () => {
    while (next < reqs.length) {
      const i = next++;
      try { out[i] = await perform(reqs[i]); } catch (e) { out[i] = { error: describe(e) }; }
    }
  }));
  return out;
}

port.on('message', (req: HttpRequest | HttpRequest[]) => {
  const done = (): void => { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); };
  if (Array.isArray(req)) {
    void performAll(req).then((res) => {
      port.postMessage(res, res.flatMap((r) => ('body' in r ? [r.body.buffer as ArrayBuffer] : [])));
    }).finally(done);
    return;
  }
  void perform(req).then(
    (res) => port.postMessage(res, [res.body.buffer as ArrayBuffer]),
    (e: unknown) => port.postMessage({ error: describe(e) }),
  ).finally(done);
});
