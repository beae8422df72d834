// hf://org/repo@<commit>[/path] targets: where the Hugging Face Hub serves a repository's files and its file list,
// and which requests may carry the user's token.
//
//   file bytes:  <endpoint>/<org>/<repo>/resolve/<revision>/<path>      (redirects to a CDN for LFS files)
//   file list:   <endpoint>/api/models/<org>/<repo>/revision/<revision>?blobs=true   ({ sha, siblings: [{ rfilename, size }] })
//
// The endpoint is https://huggingface.co unless SAFE_WEIGHTS_HF_ENDPOINT (or huggingface_hub's HF_ENDPOINT) names
// another (a mirror, or the tests' local server). HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN) is sent as a Bearer
// token to that endpoint's origin only: never to a redirect target elsewhere (undici drops Authorization on a
// cross-origin redirect, and the ranges after the first go to the redirect target without it).
import { HttpError, SyncHttp, redact } from './syncHttp';

export interface HfTarget {
  /** "org/repo" (or a legacy one-part id such as "gpt2"). */
  repo: string;
  revision: string;
  /** A file in the repository, or undefined for the whole repository. */
  path?: string;
  /** The revision is a full commit hash (40 hex digits): the bytes cannot change under the same name. */
  pinned: boolean;
}

export const COMMIT_RE = /^[0-9a-f]{40}$/;

export function isRemoteTarget(arg: string): boolean { return /^(?:https?|hf):\/\//i.test(arg); }
export function isHfTarget(arg: string): boolean { return /^hf:\/\//i.test(arg); }

/**
 * hf://org/repo@rev/path/in/repo, hf://org/repo@rev (the whole repository), hf://org/repo/path (no revision: the
 * main branch, unpinned). A revision holding '/' (refs/pr/1) is written percent-encoded (refs%2Fpr%2F1).
 */
export function parseHfTarget(arg: string): HfTarget {
  const rest = arg.replace(/^hf:\/\//i, '').replace(/^models\//, '');
  let repo: string, revision: string, path: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    repo = rest.slice(0, at);
    const after = rest.slice(at + 1);
    const slash = after.indexOf('/');
    revision = decodeURIComponent(slash >= 0 ? after.slice(0, slash) : after);
    path = slash >= 0 ? after.slice(slash + 1) : undefined;
  } else {
    const parts = rest.split('/');
    repo = parts.slice(0, 2).join('/');
    path = parts.length > 2 ? parts.slice(2).join('/') : undefined;
    revision = 'main';
  }
  if (path !== undefined) path = path.replace(/\/+$/, '') || undefined;
  const segs = repo.split('/');
  if (!repo || segs.length > 2 || segs.some((s) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s) || s.includes('..'))) {
    throw new HttpError(`"${arg}" does not name a Hugging Face repository (hf://org/repo@<commit>[/path])`);
  }
  if (!revision) throw new HttpError(`"${arg}": empty revision after @`);
  if (path !== undefined && path.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new HttpError(`"${arg}": the path in the repository must not contain empty, "." or ".." parts`);
  }
  return { repo, revision, path, pinned: COMMIT_RE.test(revision) };
}

export function formatHfTarget(t: HfTarget, path = t.path): string {
  return `hf://${t.repo}@${t.revision.includes('/') ? encodeURIComponent(t.revision) : t.revision}${path ? `/${path}` : ''}`;
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.SAFE_WEIGHTS_HF_ENDPOINT || env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function hubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const t = (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || '').trim();
  return t || undefined;
}

/** The Authorization header for a URL: only when it is on the Hub endpoint's origin and a token is set. */
export function authHeadersFor(env: NodeJS.ProcessEnv = process.env): (url: string) => Record<string, string> {
  const token = hubToken(env);
  let origin: string | undefined;
  try { origin = new URL(hubEndpoint(env)).origin; } catch { origin = undefined; }
  return (url: string): Record<string, string> => {
    if (!token || !origin) return {};
    try { return new URL(url).origin === origin ? { authorization: `Bearer ${token}` } : {}; } catch { return {}; }
  };
}

function encodePath(p: string): string { return p.split('/').map(encodeURIComponent).join('/'); }

export function resolveUrl(t: HfTarget, path: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${hubEndpoint(env)}/${t.repo}/resolve/${encodeURIComponent(t.revision)}/${encodePath(path)}`;
}

export interface RepoListing { commit: string; files: { path: string; size?: number }[] }

/** The repository's files at the revision (the Hub's model-info API), and the commit the revision names. */
export function listRepo(http: SyncHttp, t: HfTarget, env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): RepoListing {
  const url = `${hubEndpoint(env)}/api/models/${t.repo}/revision/${encodeURIComponent(t.revision)}?blobs=true`;
  const res = http.get({ url, headers: { accept: 'application/json', 'user-agent': 'safe-weights', ...authHeadersFor(env)(url) }, timeoutMs, maxBody: 32 << 20 });
  if (res.status !== 200) {
    const why = res.status === 401 || res.status === 403 ? ' (a private or gated repository needs HF_TOKEN)' : res.status === 404 ? ' (no such repository or revision)' : '';
    throw new HttpError(`GET ${redact(url)}: HTTP ${res.status}${why}`);
  }
  if (res.truncated) throw new HttpError(`GET ${redact(url)}: the file list is larger than 32 MB`);
  let doc: unknown;
  try { doc = JSON.parse(Buffer.from(res.body).toString('utf8')); } catch { throw new HttpError(`GET ${redact(url)}: the answer is not JSON`); }
  const d = doc as { sha?: unknown; siblings?: unknown };
  if (!d || typeof d !== 'object' || !Array.isArray(d.siblings)) throw new HttpError(`GET ${redact(url)}: no file list (siblings) in the answer`);
  const commit = typeof d.sha === 'string' ? d.sha : '';
  if (t.pinned && commit && commit !== t.revision) throw new HttpError(`${formatHfTarget(t)}: the Hub answered for commit ${commit}, not the one asked`);
  const files: RepoListing['files'] = [];
  for (const s of d.siblings as unknown[]) {
    const o = s as { rfilename?: unknown; size?: unknown; lfs?: { size?: unknown } };
    if (!o || typeof o.rfilename !== 'string') continue;
    const size = typeof o.size === 'number' ? o.size : typeof o.lfs?.size === 'number' ? o.lfs.size : undefined;
    files.push({ path: o.rfilename, size });
  }
  return { commit, files };
}
