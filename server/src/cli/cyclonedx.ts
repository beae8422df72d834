// `scan --format cyclonedx`: a CycloneDX 1.6 JSON BOM of the model files found (an ML-BOM): one component of type
// machine-learning-model per file with its SHA-256, and what the scan found as properties in the safe-weights
// namespace (format, verdict, one property per finding). Code files are not components: they are not models.
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { FileReport, ModelReport } from '../models/types';

interface Property { name: string; value: string }

/** The first 2,000 findings of a file become properties (a report lists at most 2,000 anyway). */
const MAX_FINDING_PROPS = 2000;

export function toCycloneDx(reports: FileReport[], version: string, cwd: string, now = new Date()): Record<string, unknown> {
  const components = [];
  const refs = new Set<string>();
  for (const r of reports) {
    if (r.kind !== 'model') continue;
    const m = r as ModelReport;
    const rel = path.relative(cwd, path.resolve(m.path));
    const name = (rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(m.path) : rel).split(path.sep).join('/');
    let ref = `model:${name}`;
    for (let k = 2; refs.has(ref); k++) ref = `model:${name}#${k}`;
    refs.add(ref);
    const props: Property[] = [
      { name: 'safe-weights:format', value: m.format },
      ...(m.formatDetail ? [{ name: 'safe-weights:formatDetail', value: m.formatDetail }] : []),
      { name: 'safe-weights:verdict', value: m.verdict },
      { name: 'safe-weights:summary', value: m.summary },
      { name: 'safe-weights:size', value: String(m.size) },
      { name: 'safe-weights:tensors', value: String(m.tensorCount) },
    ];
    if (m.weightsOnly.loads !== null) props.push({ name: 'safe-weights:torchWeightsOnly', value: m.weightsOnly.loads ? 'loads' : 'refused' });
    for (const f of m.findings.slice(0, MAX_FINDING_PROPS)) {
      const where = f.offset !== undefined ? ` (offset ${f.offset}${f.member ? ` in ${f.member}` : ''})` : f.member ? ` (in ${f.member})` : '';
      props.push({ name: 'safe-weights:finding', value: `${f.rule} ${f.severity}${where}: ${f.message}` });
    }
    const omitted = (m.findingsOmitted ?? 0) + Math.max(0, m.findings.length - MAX_FINDING_PROPS);
    if (omitted) props.push({ name: 'safe-weights:findingsOmitted', value: String(omitted) });
    const c: Record<string, unknown> = { type: 'machine-learning-model', 'bom-ref': ref, name };
    if (m.sha256) c.hashes = [{ alg: 'SHA-256', content: m.sha256 }];
    c.properties = props;
    components.push(c);
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: now.toISOString(),
      tools: { components: [{ type: 'application', name: 'safe-weights', version }] },
    },
    components,
  };
}
