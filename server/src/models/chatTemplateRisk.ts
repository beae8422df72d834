// Chat templates in GGUF files are Jinja, rendered by Python's jinja2 (llama-cpp-python and others). An
// unsandboxed render lets a template walk from any object to Python internals and run code
// (CVE-2024-34359). Real chat templates only loop over messages, compare roles, concatenate strings and call
// helpers such as raise_exception or strftime_now; they never touch dunder attributes, the attr filter or
// template internals. So these patterns look for the reach into Python internals, and the common ways of
// hiding it (names built from pieces, escaped underscores, %c formatting).

interface Pattern { re: RegExp; why: string }

const PATTERNS: readonly Pattern[] = [
  { re: /__[A-Za-z][A-Za-z0-9_]{0,40}?__/g, why: 'names a Python dunder attribute, which reaches object internals' },
  { re: /_TemplateReference__context/g, why: 'reaches the template runtime context through a name-mangled private attribute' },
  { re: /\|\s*attr\b|\battr\s*\(/g, why: 'uses the attr filter, which reads arbitrary attributes by name' },
  { re: /\b(?:lipsum|cycler|joiner|namespace|self|request|config|url_for|get_flashed_messages|g)\s*(?:\.\s*_|\[\s*['"]_|\|\s*attr)/g,
    why: 'walks into the internals of a Jinja/Flask global object (a known sandbox-escape gadget)' },
  { re: /\brequest\s*\.\s*application\b/g, why: 'reaches the web application object through request.application' },
  { re: /\bpopen\b/gi, why: 'mentions popen (running a shell command)' },
  { re: /\bos\s*\.\s*(?:system|popen|exec\w*|spawn\w*|environ|remove|unlink|rmdir|getenv|putenv|listdir|fork|kill|chmod|walk|open)\b/g,
    why: 'calls into the os module (processes, files, environment)' },
  { re: /\bsubprocess\b/g, why: 'mentions the subprocess module' },
  { re: /\b(?:eval|exec|execfile|getattr|setattr|compile)\s*\(/g, why: 'calls a Python builtin that evaluates code or reads attributes by name' },
  { re: /\b(?:globals|locals|vars)\s*\(\s*\)/g, why: 'asks for the Python namespace' },
  { re: /\bsys\s*\.\s*modules\b|\bbuiltins\b|\bimportlib\b/g, why: 'reaches Python module machinery' },
  { re: /\.\s*mro\s*\(/g, why: 'walks the class hierarchy with mro()' },
  { re: /\\x5[fF]|\\u005[fF]|\\U0000005[fF]|\\137|\\N\{LOW LINE\}/g, why: 'hides underscores behind escape sequences (a way to build dunder names)' },
  { re: /(['"])(?:_[^'"\n]{0,40}|[^'"\n]{0,40}_)\1\s*[~+]|[~+]\s*(['"])(?:_[^'"\n]{0,40}|[^'"\n]{0,40}_)\2/g,
    why: 'builds a name from string pieces at an underscore boundary (a way to assemble dunder names)' },
  { re: /\[\s*(['"])_{1,2}\1[^\]]{0,200}\]\s*\|\s*join/g, why: 'joins underscore pieces into a name' },
  { re: /%c[^'"]{0,200}(['"])\s*\|\s*format|\|\s*format\s*\(\s*95\b/g, why: 'builds characters from their codes with format' },
  { re: /\{%-?\s*(?:import|from|include|extends)\b/g, why: 'loads another template' },
];

function snippet(s: string): string { return JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s); }

/** Sentences describing each risky construct found in a template (empty for ordinary templates). */
export function scanChatTemplate(template: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of PATTERNS) {
    p.re.lastIndex = 0;
    let m: RegExpExecArray | null;
    let hits = 0;
    while ((m = p.re.exec(template)) !== null && hits < 12) {
      if (m[0].length === 0) { p.re.lastIndex++; continue; }
      const key = `${p.why}\u0000${m[0]}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(`${snippet(m[0])} at character ${m.index} ${p.why}.`);
        hits++;
      }
    }
  }
  return out;
}
