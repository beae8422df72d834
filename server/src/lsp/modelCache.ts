// The model-file cache: engine reports by path (with the mtime and allowlist they were made with), and recent
// stats of the paths that load calls name.
import { statSync } from 'node:fs';
import type { ModelReport } from '../models/types';

type Stat = { isFile: boolean; mtime: number };

export class ModelCache {
  readonly reports = new Map<string, { mtime: number; allow: string; report: ModelReport }>();
  // Diagnostics are rebuilt on every keystroke; a file's mtime is re-read at most once a second (watched-file
  // events clear it sooner), so a document with many load calls does not stat the disk for each of them.
  private readonly stats = new Map<string, { stat: Stat | undefined; at: number }>();

  recentStat(path: string): Stat | undefined {
    const now = Date.now();
    const hit = this.stats.get(path);
    if (hit && now - hit.at < 1000) return hit.stat;
    let st: Stat | undefined;
    try {
      const s = statSync(path, { throwIfNoEntry: false });   // no exception for the common "not there"
      st = s ? { isFile: s.isFile(), mtime: s.mtimeMs } : undefined;
    } catch { st = undefined; }
    if (this.stats.size > 10_000) this.stats.clear();
    this.stats.set(path, { stat: st, at: now });
    return st;
  }

  /** The file changed or went away on disk. */
  invalidate(path: string): void {
    this.stats.delete(path);
    this.reports.delete(path);
  }
}
