// The Inspector webview's HTML shell. The page holds no data: the report arrives by postMessage and
// media/inspector.js builds the DOM with textContent only. No vscode import: unit-tested.
import { randomBytes } from 'node:crypto';

export interface ShellOptions {
  cspSource: string;   // webview.cspSource
  scriptUri: string;   // webview URI of media/inspector.js
  styleUri: string;    // webview URI of media/inspector.css
  codiconUri?: string; // webview URI of dist/codicons/codicon.css (the icon font, a local resource)
  nonce?: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

/** Strict policy: nothing loads but our own script (by nonce) and stylesheet; no inline script, no eval. */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `img-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

function attr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function inspectorHtml(o: ShellOptions): string {
  const nonce = o.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${o.codiconUri ? `<link rel="stylesheet" href="${attr(o.codiconUri)}">\n` : ''}<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>Model Inspector</title>
</head>
<body>
<main id="app" aria-live="polite"><p class="loading">Loading…</p></main>
<script nonce="${attr(nonce)}" src="${attr(o.scriptUri)}"></script>
</body>
</html>`;
}
