// Writes the safeWeights.rules setting's schema in package.json from the rule catalogs (one property per rule id,
// described by its name and short text). Run after adding a rule: `npx tsc -p . && node scripts/rule-settings.mjs`.
// test/unit/client/ruleDocs.test.ts fails while package.json and the catalogs disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { MODEL_RULES } = require(join(root, 'out/server/src/models/rules.js'));
const { CODE_RULES } = require(join(root, 'out/server/src/python/rules.js'));
const LEVELS = ['off', 'info', 'warning', 'error'];

const file = join(root, 'package.json');
const manifest = JSON.parse(readFileSync(file, 'utf8'));
const setting = manifest.contributes.configuration.properties['safeWeights.rules'];
setting.properties = Object.fromEntries([...MODEL_RULES, ...CODE_RULES].map((r) => [r.id,
  { type: 'string', enum: LEVELS, markdownDescription: `\`${r.name}\`: ${r.short}` }]));
writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
console.log(`safeWeights.rules: ${Object.keys(setting.properties).length} rule ids`);
