// Model Inspector webview. Runs under a strict CSP (nonce script, no eval, no inline handlers).
// Every string in a report comes from an untrusted model file: the DOM is built with createElement and
// textContent only — never innerHTML, never an attribute name or URL taken from the report.
// @ts-check
(function () {
  'use strict';
  /* global acquireVsCodeApi */
  // eslint-disable-next-line no-undef
  const vscode = acquireVsCodeApi();
  const app = /** @type {HTMLElement} */ (document.getElementById('app'));
  const ROW_HEIGHT = 24;          // px; every tensor row has this height (virtualised table)
  const OVERSCAN = 8;             // rows rendered above and below the viewport

  const saved = vscode.getState() || {};
  const ui = {
    tab: saved.tab || 'overview',
    filter: saved.filter || '',
    sortKey: saved.sortKey || 'index',
    sortDir: saved.sortDir || 1,
    pickleView: saved.pickleView || 'disassembly',
  };
  /** @type {any} */ let report = null;
  let fileName = '';
  let canConvert = false;
  /** @type {string | null} */ let convertRefusal = null;
  /** @type {{text: string, global: string, offset: number, member?: string}[] | null} */ let danger = null;
  /** @type {{label: string, detail: string}[] | null} */ let loads = null;
  /** @type {string | null} */ let sha256 = null;
  let shaBusy = false;
  /** @type {{text: string, decompiled: string, truncated: boolean} | null} */ let disasm = null;
  /** @type {string | null} */ let disasmError = null;
  let disasmRequested = false;
  /** @type {{ok: boolean, message: string} | null} */ let convertNote = null;
  let convertAvailable = true;
  /** @type {any[]} */ let rows = [];       // tensor rows with derived fields, in file order
  /** @type {any[]} */ let visible = [];    // filtered + sorted view of rows

  function persist() { vscode.setState(ui); }

  /**
   * Creates an element. `props` only sets properties this file names (never from report data);
   * children are nodes or strings (strings become text nodes).
   * @param {string} tag @param {Record<string, any>} [props] @param {...(Node|string|null|undefined|false)} children
   */
  function h(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'className') e.className = v;
        else if (k === 'text') e.textContent = String(v);
        else if (k === 'onClick') e.addEventListener('click', v);
        else if (k === 'onKeydown') e.addEventListener('keydown', v);
        else if (k === 'onInput') e.addEventListener('input', v);
        else if (k === 'onScroll') e.addEventListener('scroll', v, { passive: true });
        else if (k === 'tabIndex') e.tabIndex = v;
        else if (k === 'disabled') /** @type {HTMLButtonElement} */ (e).disabled = !!v;
        else if (k === 'value') /** @type {HTMLInputElement} */ (e).value = v;
        else e.setAttribute(k, String(v));   // fixed names from this file: role, aria-*, title, type, id, data-*
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  /** A decorative codicon (the font is a local resource; screen readers skip it). */
  function icon(name) {
    return h('span', { className: `codicon codicon-${name}`, 'aria-hidden': 'true' });
  }

  function formatBytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '?';
    const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? `${n} bytes` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
  }
  function formatCount(n) { return typeof n === 'number' ? n.toLocaleString('en-US') : '?'; }
  function formatOffset(off, member) {
    if (typeof off !== 'number') return '';
    return `0x${off.toString(16)} (${off})${member ? ` in ${member}` : ''}`;
  }
  /** Whether the report has the pickle stream an offset of `member` points into (the disassembly shows it). */
  function hasPickleOf(member) {
    return !!report && Array.isArray(report.pickles) && report.pickles.some((p) => (p.member ?? null) === (member ?? null));
  }
  /**
   * An offset: a link that opens the disassembly at that opcode when the file has that pickle, plain text otherwise.
   * @param {unknown} off @param {unknown} member
   */
  function offsetCell(off, member) {
    // a finding about a member without a byte offset (a .keras config.json, an ONNX external file): the member
    if (typeof off !== 'number' || off < 0) return typeof member === 'string' ? member : '';
    const m = typeof member === 'string' ? member : undefined;
    const hex = `0x${off.toString(16)} (${off})`;
    if (!hasPickleOf(m)) return formatOffset(off, m);
    return h('span', { className: 'offset' },
      h('button', { type: 'button', className: 'link', 'data-offset': off,
        'aria-label': `Open the disassembly at offset ${off}${m ? ` of ${m}` : ''}`,
        title: 'Open the disassembly at this opcode',
        onClick: () => vscode.postMessage({ type: 'openDisassembly', view: 'disassembly', offset: off, ...(m ? { member: m } : {}) }) },
      icon('list-tree'), hex),
      m ? ` in ${m}` : '');
  }
  /** The loader that would run a dangerous file, by format (default: the pickle loaders). */
  const LOADERS = {
    keras: 'keras.saving.load_model', 'keras-h5': 'keras.models.load_model (safe_mode does not protect .h5 files)',
    onnx: 'onnx.load or an ONNX runtime session', hdf5: 'code that reads it as a Keras model',
  };
  const VERDICT_WORD = { safe: 'Safe', caution: 'Caution', dangerous: 'Dangerous', invalid: 'Invalid' };
  const SEVERITY_WORD = { safe: 'safe', info: 'info', caution: 'caution', dangerous: 'dangerous', invalid: 'invalid' };
  function sevClass(s) { return `sev sev-${Object.prototype.hasOwnProperty.call(SEVERITY_WORD, s) ? s : 'info'}`; }
  function sevWord(s) { return Object.prototype.hasOwnProperty.call(SEVERITY_WORD, s) ? SEVERITY_WORD[s] : String(s); }

  const FORMAT_NAME = {
    'pytorch-zip': 'PyTorch checkpoint (zip)', 'torchscript-zip': 'TorchScript archive', 'pytorch-legacy': 'PyTorch checkpoint (legacy)',
    'pytorch-legacy-tar': 'PyTorch checkpoint (tar)', pickle: 'Python pickle', joblib: 'joblib', 'numpy-npy': 'NumPy .npy',
    'numpy-npz': 'NumPy .npz', zip: 'zip archive', tar: 'tar archive', '7z': '7z archive', safetensors: 'safetensors', gguf: 'GGUF',
    keras: 'Keras model (.keras)', 'keras-h5': 'Keras legacy HDF5 model', hdf5: 'HDF5 file', onnx: 'ONNX model',
    'huggingface-repo': 'Hugging Face repository',
    unknown: 'unknown format',
  };
  function formatName(r) {
    const f = String(r.format ?? '');
    const name = Object.prototype.hasOwnProperty.call(FORMAT_NAME, f) ? FORMAT_NAME[f] : f;
    const d = r.formatDetail ? String(r.formatDetail) : '';
    // formatDetail often repeats the format's name ("joblib (gzip)"): show it alone then
    if (!d) return name;
    if (f && d.toLowerCase().startsWith(f.toLowerCase())) return `${name}${d.slice(f.length)}`;
    return d.toLowerCase().startsWith(name.toLowerCase()) ? d : `${name}, ${d}`;
  }

  /** Parameter count, bytes and dtype mix of the listed tensors. */
  function tensorTotals() {
    let params = 0, bytes = 0;
    /** @type {Map<string, {n: number, bytes: number}>} */ const dtypes = new Map();
    for (const t of rows) {
      // (a sparse tensor's shape is its dense size, not what it stores: left out of the parameter count)
      if (!t.sparse) params += t.numel;
      bytes += t.bytes;
      const d = dtypes.get(t.dtype) || { n: 0, bytes: 0 };
      d.n++; d.bytes += t.bytes; dtypes.set(t.dtype, d);
    }
    const mix = [...dtypes.entries()].sort((a, b) => b[1].bytes - a[1].bytes || b[1].n - a[1].n)
      .map(([d, v]) => `${d || '?'} × ${formatCount(v.n)}`).join(', ');
    return { params, bytes, mix };
  }

  function weightsOnlyText(w) {
    if (!w) return '';
    const answer = w.loads === true ? 'yes' : w.loads === false ? 'no' : 'not applicable';
    return `Loads with torch.load(weights_only=True): ${answer}${w.reason ? `, because ${w.reason}` : ''}`;
  }

  // ---------------------------------------------------------------- tensor rows
  function prepareRows(tensors) {
    return (Array.isArray(tensors) ? tensors : []).map((t, index) => {
      const shape = Array.isArray(t.shape) ? t.shape : [];
      const numel = shape.reduce((a, b) => a * (typeof b === 'number' ? b : 0), 1);
      const shapeText = `[${shape.join(', ')}]`;
      const name = String(t.name ?? '');
      // a sparse tensor: its values' dtype and its layout ("float32 sparse_coo"); bytes are its indices' and values'
      const dtype = String(t.dtype ?? '') + (typeof t.layout === 'string' && t.layout ? ` ${t.layout}` : '');
      // `hay` (the lower-cased search text) is built on the first filter, not for every report
      return { index, name, dtype, shape: shapeText, numel, bytes: typeof t.bytes === 'number' ? t.bytes : 0, sparse: !!t.layout, hay: '' };
    });
  }

  function applyView() {
    const q = ui.filter.trim().toLowerCase();
    if (q && rows.length && !rows[0].hay) for (const r of rows) r.hay = `${r.name}\u0000${r.dtype}\u0000${r.shape}`.toLowerCase();
    visible = q ? rows.filter((r) => r.hay.includes(q)) : rows.slice();
    const k = ui.sortKey, d = ui.sortDir;
    if (k !== 'index' || d !== 1) {
      const key = k === 'shape' ? 'numel' : k;
      visible.sort((a, b) => {
        const x = a[key], y = b[key];
        return (x < y ? -1 : x > y ? 1 : a.index - b.index) * d;
      });
    }
  }

  // ---------------------------------------------------------------- rendering
  function render() {
    app.replaceChildren();
    if (!report) return;
    const r = report;
    const verdict = Object.prototype.hasOwnProperty.call(VERDICT_WORD, r.verdict) ? r.verdict : 'invalid';

    app.appendChild(h('header', { className: 'head' }, h('h1', { text: fileName })));

    app.appendChild(h('section', { className: `banner verdict-${verdict}`, role: 'status', 'aria-label': 'Verdict', id: 'verdict' },
      icon(VERDICT_ICON[verdict]),
      h('strong', { className: 'verdict-word', text: VERDICT_WORD[verdict] }),
      h('span', { className: 'summary', text: r.summary || '' })));

    if (verdict === 'dangerous') app.appendChild(dangerSection(r));
    else if (verdict === 'caution') app.appendChild(cautionSection(r));

    // torch.load's weights_only answer only where torch.load reads the file
    if (r.weightsOnly && r.weightsOnly.loads !== null && r.weightsOnly.loads !== undefined) {
      app.appendChild(h('p', { className: 'weights-only', id: 'weights-only' }, weightsOnlyText(r.weightsOnly)));
    }

    applyView();
    app.appendChild(toolbar(r, verdict));
    app.appendChild(facts(r));
    app.appendChild(tabs(r));
    postRendered();
  }

  const VERDICT_ICON = { safe: 'pass', caution: 'warning', dangerous: 'error', invalid: 'circle-slash' };

  /** Where the workspace loads the file, and how to open each place (by index: the extension holds the URIs). */
  function loadsItem() {
    if (!loads) return h('li', null, icon('search'), ' ', h('span', { className: 'loading', text: 'Looking for code in this workspace that loads it…' }));
    if (!loads.length) return h('li', null, icon('search'), ' No Python file or notebook in this workspace names this file.');
    const list = h('ul', { className: 'sites', 'aria-label': 'Code that loads this file' });
    loads.forEach((s, index) => list.appendChild(h('li', null,
      h('button', { type: 'button', className: 'link', 'aria-label': `Open ${s.label}`, onClick: () => vscode.postMessage({ type: 'openLoad', index }) },
        icon('go-to-file'), s.label),
      h('code', { className: 'site-detail', text: s.detail }))));
    return h('li', null, icon('go-to-file'), ` Loaded or named in this workspace at ${loads.length === 1 ? 'one place' : `${loads.length} places`} — remove or replace these loads:`, list);
  }

  /** Dangerous: what loading would run comes first, then what to do. */
  function dangerSection(r) {
    const sec = h('section', { className: 'danger', id: 'danger', 'aria-labelledby': 'danger-title' },
      h('h2', { id: 'danger-title' }, icon('flame'), ' Loading this file would run'));
    const calls = danger ?? [];
    const findings = (Array.isArray(r.findings) ? r.findings : []).filter((f) => f.severity === 'dangerous');
    if (calls.length) {
      const list = h('ul', { className: 'calls', 'aria-label': 'Calls made when the file is loaded' });
      for (const c of calls) list.appendChild(h('li', null, h('code', { className: 'call', text: c.text }), ' ', offsetCell(c.offset, c.member)));
      sec.appendChild(list);
    } else if (danger === null && Array.isArray(r.pickles) && r.pickles.length) {
      sec.appendChild(h('p', { className: 'loading', text: 'Decompiling…' }));
    } else {
      const list = h('ul', { className: 'calls' });
      for (const f of findings.slice(0, 5)) list.appendChild(h('li', null, h('span', { text: String(f.message ?? '') }), ' ', offsetCell(f.offset, f.member)));
      sec.appendChild(list);
    }
    sec.appendChild(h('h3', { text: 'What to do' }));
    sec.appendChild(h('ul', { className: 'todo' },
      h('li', null, icon('circle-slash'), ' ', h('strong', { text: 'Do not load it' }),
        ` with ${LOADERS[String(r.format)] ?? 'torch.load, pickle.load, joblib.load or numpy.load(allow_pickle=True)'}: what is listed above runs as it loads, before any of your code sees the result.`),
      loadsItem(),
      h('li', null, icon('shield'), ' ', h('strong', { text: 'Get a safe copy' }),
        ': ask whoever published it for a .safetensors file (tensors only, no code), or download the model again from a source you trust and scan it. Safe Weights does not convert a dangerous file: a copy would vouch for bytes that run code.')));
    return sec;
  }

  /** Caution: what it imports, and why it is not converted. */
  function cautionSection(_r) {
    const sec = h('section', { className: 'caution', id: 'caution', 'aria-label': 'What loading imports' });
    sec.appendChild(h('ul', { className: 'todo' },
      h('li', null, icon('info'), ' Loading it imports and runs library code to rebuild objects. Load it only if you trust where it came from; ',
        'torch.load(weights_only=True) refuses it.'),
      loadsItem()));
    return sec;
  }

  function toolbar(r, verdict) {
    const hasPickle = Array.isArray(r.pickles) && r.pickles.length > 0;
    const bar = h('div', { className: 'toolbar', role: 'toolbar', 'aria-label': 'Inspector actions', id: 'actions' },
      canConvert ? h('button', {
        type: 'button', id: 'convert', className: 'primary', disabled: !convertAvailable,
        title: convertAvailable ? 'Write the tensors as a .safetensors file next to this one (nothing from the file is run)' : 'Conversion is not available',
        onClick: () => { convertNote = { ok: true, message: 'Converting…' }; render(); vscode.postMessage({ type: 'convert' }); },
      }, icon('file-binary'), 'Convert to safetensors') : null,
      hasPickle ? h('button', { type: 'button', id: 'open-disassembly', onClick: () => vscode.postMessage({ type: 'openDisassembly', view: 'disassembly' }) },
        icon('list-tree'), 'Open disassembly') : null,
      h('button', { type: 'button', id: 'rescan', onClick: () => vscode.postMessage({ type: 'rescan' }) }, icon('refresh'), 'Rescan'));
    // a checkpoint format the converter reads, refused for this file: say why (not for dangerous files: the
    // section above says what to do)
    if (!canConvert && convertRefusal && verdict !== 'dangerous') {
      bar.appendChild(h('span', { className: 'note', id: 'convert-refusal', text: `Not converted to safetensors: ${convertRefusal}.` }));
    }
    if (convertNote) bar.appendChild(h('span', { className: convertNote.ok ? 'note' : 'note error', role: 'status', text: convertNote.message }));
    return bar;
  }

  function facts(r) {
    const shaCell = sha256
      ? h('code', { className: 'sha', id: 'sha256', text: sha256 })
      : h('button', { type: 'button', id: 'sha-button', disabled: shaBusy,
        onClick: () => { shaBusy = true; render(); vscode.postMessage({ type: 'sha256' }); } },
      shaBusy ? 'Computing SHA-256…' : 'Compute SHA-256');
    const dl = h('dl', { className: 'facts', 'aria-label': 'File facts' });
    const fact = (term, value, id) => { dl.appendChild(h('dt', { text: term })); dl.appendChild(h('dd', id ? { id } : null, value)); };
    fact('Format', formatName(r), 'fact-format');
    fact('Size', typeof r.size === 'number' && r.size >= 1024 ? `${formatBytes(r.size)} (${formatCount(r.size)} bytes)` : formatBytes(r.size), 'fact-size');
    const count = typeof r.tensorCount === 'number' ? r.tensorCount : rows.length;
    if (count > 0) {
      const t = tensorTotals();
      const partial = rows.length < count || r.tensorsTruncated;
      const more = partial ? ` (of the ${formatCount(rows.length)} listed; ${formatCount(count - rows.length || r.tensorsOmitted || 0)} more not listed)` : '';
      fact('Tensors', `${formatCount(count)}${more}`, 'fact-tensors');
      fact('Parameters', `${formatCount(t.params)}${partial ? ' or more' : ''}`, 'fact-params');
      fact('Tensor data', `${formatBytes(t.bytes)}${t.bytes >= 1024 ? ` (${formatCount(t.bytes)} bytes)` : ''}`, 'fact-tensor-bytes');
      fact('Dtypes', t.mix, 'fact-dtypes');
    }
    fact('SHA-256', shaCell);
    if (Array.isArray(r.pickles) && r.pickles.length) {
      fact('Pickle streams', r.pickles.map((p) =>
        `${p.member ? p.member + ': ' : ''}protocol ${p.protocol}, ${formatCount(p.opcodes)} opcodes${p.complete ? '' : ` — ${p.error || 'incomplete'}`}`).join('; '));
    }
    fact('Path', r.path || '');
    return dl;
  }

  const TABS = [
    ['overview', 'Findings'], ['tensors', 'Tensors'], ['metadata', 'Metadata'], ['pickle', 'Pickle'],
  ];

  /** The sections this file has: findings always; tensors, metadata and pickle only where the format has them. */
  function tabsFor(r) {
    const count = typeof r.tensorCount === 'number' ? Math.max(r.tensorCount, rows.length) : rows.length;
    const tensorFormat = !['pickle', 'zip', 'tar', '7z', 'unknown'].includes(String(r.format)) || count > 0;
    return TABS.filter(([id]) => id === 'overview'
      || (id === 'tensors' && tensorFormat)
      || (id === 'metadata' && (Object.keys(r.metadata || {}).length > 0 || r.format === 'safetensors' || r.format === 'gguf'))
      || (id === 'pickle' && Array.isArray(r.pickles) && r.pickles.length > 0));
  }

  function tabs(r) {
    const shown = tabsFor(r);
    if (!shown.some(([id]) => id === ui.tab)) ui.tab = 'overview';
    const counts = {
      overview: (r.findings || []).length,
      tensors: rows.length,
      metadata: Object.keys(r.metadata || {}).length,
      pickle: (r.pickles || []).length,
    };
    const list = h('div', { className: 'tabs', role: 'tablist', 'aria-label': 'Report sections' });
    const buttons = shown.map(([id, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': `panel-${id}`,
      'aria-selected': ui.tab === id ? 'true' : 'false', tabIndex: ui.tab === id ? 0 : -1,
      onClick: () => selectTab(id, true),
      onKeydown: (/** @type {KeyboardEvent} */ ev) => {
        const i = shown.findIndex(([t]) => t === id);
        let j = -1;
        if (ev.key === 'ArrowRight') j = (i + 1) % shown.length;
        else if (ev.key === 'ArrowLeft') j = (i + shown.length - 1) % shown.length;
        else if (ev.key === 'Home') j = 0;
        else if (ev.key === 'End') j = shown.length - 1;
        if (j >= 0) { ev.preventDefault(); selectTab(shown[j][0], true); }
      },
    }, `${label} (${formatCount(counts[id])})`));
    buttons.forEach((b) => list.appendChild(b));
    const panel = h('section', { className: 'panel', role: 'tabpanel', id: `panel-${ui.tab}`, 'aria-labelledby': `tab-${ui.tab}`, tabIndex: 0 });
    if (ui.tab === 'overview') overviewPanel(panel, r);
    else if (ui.tab === 'tensors') tensorPanel(panel);
    else if (ui.tab === 'metadata') metadataPanel(panel, r);
    else picklePanel(panel);
    return h('div', { className: 'tabbed' }, list, panel);
  }

  function selectTab(id, focus) {
    ui.tab = id; persist(); render();
    if (focus) document.getElementById(`tab-${id}`)?.focus();
  }

  function simpleTable(caption, headers, data, nowrap = []) {
    const t = h('table', { className: 'simple' }, h('caption', { text: caption }));
    t.appendChild(h('thead', null, h('tr', null, ...headers.map((x) => h('th', { scope: 'col', text: x })))));
    const body = h('tbody');
    for (const cells of data) body.appendChild(h('tr', null, ...cells.map((c, i) => h('td', nowrap.includes(i) ? { className: 'nowrap' } : null, c))));
    t.appendChild(body);
    return t;
  }

  function overviewPanel(panel, r) {
    const findings = Array.isArray(r.findings) ? r.findings : [];
    // most severe first, then in file order: the line a person must see is at the top
    const rank = { dangerous: 0, caution: 1, safe: 2 };
    const globals = (Array.isArray(r.globals) ? r.globals : []).map((g, i) => ({ g, i }))
      .sort((a, b) => ((rank[a.g.severity] ?? 1) - (rank[b.g.severity] ?? 1)) || a.i - b.i).map((x) => x.g);
    if (!findings.length && !globals.length) panel.appendChild(h('p', { className: 'empty', text: 'No findings.' }));
    if (findings.length) {
      panel.appendChild(simpleTable(`Findings (${r.findingsOmitted ? `${findings.length} shown, ${r.findingsOmitted} more not listed` : findings.length})`, ['Severity', 'Rule', 'Message', 'Location'],
        findings.map((f) => [
          h('span', { className: sevClass(f.severity), text: sevWord(f.severity) }),
          h('code', { text: String(f.rule ?? '') }),
          String(f.message ?? ''),
          offsetCell(f.offset, f.member),
        ]), [0, 1]));
    }
    if (globals.length) {
      panel.appendChild(simpleTable(`Imported globals (${r.globalsOmitted ? `${globals.length} shown, ${r.globalsOmitted} more not listed` : globals.length})`, ['Severity', 'Global', 'Called', 'Offset', 'Why'],
        globals.map((g) => [
          h('span', { className: sevClass(g.severity), text: sevWord(g.severity) }),
          h('code', { className: 'global', text: `${g.module}.${g.name}` }),
          g.called ? 'called' : 'imported',
          offsetCell(g.offset, g.member),
          String(g.reason ?? ''),
        ]), [0, 2]));
    }
  }

  function metadataPanel(panel, r) {
    const entries = Object.entries(r.metadata || {});
    if (!entries.length) { panel.appendChild(h('p', { className: 'empty', text: 'No metadata.' })); return; }
    panel.appendChild(simpleTable(`Metadata (${entries.length})`, ['Key', 'Value'],
      entries.map(([k, v]) => [h('code', { text: k }), h('span', { className: 'meta-value', text: String(v) })])));
  }

  function picklePanel(panel) {
    if (!disasmRequested) { disasmRequested = true; vscode.postMessage({ type: 'disassembly' }); }
    const views = [['disassembly', 'Disassembly'], ['decompiled', 'Decompiled']];
    const bar = h('div', { className: 'toolbar', role: 'toolbar', 'aria-label': 'Pickle view' },
      h('div', { className: 'segmented', role: 'group', 'aria-label': 'Show' },
        ...views.map(([id, label]) => h('button', {
          type: 'button', className: 'toggle', 'aria-pressed': ui.pickleView === id ? 'true' : 'false',
          onClick: () => { ui.pickleView = id; persist(); render(); },
        }, ui.pickleView === id ? icon('check') : null, label))),
      h('button', { type: 'button', onClick: () => vscode.postMessage({ type: 'openDisassembly', view: ui.pickleView }) }, icon('link-external'), 'Open in editor'));
    panel.appendChild(bar);
    if (disasmError) { panel.appendChild(h('p', { className: 'note error', text: disasmError })); return; }
    if (!disasm) { panel.appendChild(h('p', { className: 'loading', text: 'Disassembling…' })); return; }
    const text = ui.pickleView === 'decompiled' ? disasm.decompiled : disasm.text;
    panel.appendChild(h('pre', { className: 'code', tabIndex: 0, 'aria-label': ui.pickleView, text: text || '(empty)' }));
    if (disasm.truncated) panel.appendChild(h('p', { className: 'note', text: 'Output truncated: the file is too large to show in full.' }));
  }

  // ------------------------------------------------------ virtualised tensor table
  const COLUMNS = [['name', 'Name'], ['dtype', 'Dtype'], ['shape', 'Shape'], ['bytes', 'Size']];

  function tensorPanel(panel) {
    if (!rows.length) { panel.appendChild(h('p', { className: 'empty', text: 'No tensors.' })); return; }
    const count = h('span', { className: 'count', id: 'tensor-count', role: 'status' });
    const setCount = () => { count.textContent = `${formatCount(visible.length)} of ${formatCount(rows.length)} tensors`; };
    let timer = 0;
    const input = h('input', {
      type: 'search', id: 'tensor-filter', placeholder: 'Filter by name, dtype or shape', 'aria-label': 'Filter tensors',
      value: ui.filter,
      onInput: (ev) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          ui.filter = /** @type {HTMLInputElement} */ (ev.target).value; persist();
          applyView(); setCount(); spacer.style.height = `${visible.length * ROW_HEIGHT}px`;
          body.scrollTop = 0; paint(); postRendered();
        }, 80);
      },
    });
    const head = h('div', { className: 'vt-row vt-head', role: 'row' },
      ...COLUMNS.map(([key, label]) => {
        const sorted = ui.sortKey === key;
        return h('div', { className: `vt-cell c-${key}`, role: 'columnheader',
          'aria-sort': sorted ? (ui.sortDir === 1 ? 'ascending' : 'descending') : 'none' },
        h('button', { type: 'button', className: 'sort', title: `Sort by ${label}`,
          onClick: () => {
            if (ui.sortKey === key) ui.sortDir = -ui.sortDir; else { ui.sortKey = key; ui.sortDir = 1; }
            persist(); render(); document.querySelector(`.c-${key} .sort`)?.focus();
          } }, `${label}${sorted ? (ui.sortDir === 1 ? ' ▲' : ' ▼') : ''}`));
      }));
    const spacer = h('div', { className: 'vt-spacer' });
    const body = h('div', { className: 'vt-body', tabIndex: 0, role: 'rowgroup', 'aria-label': 'Tensors (scroll with arrow keys)',
      onScroll: () => { if (!raf) raf = requestAnimationFrame(() => { raf = 0; paint(); }); } }, spacer);
    let raf = 0;
    spacer.style.height = `${visible.length * ROW_HEIGHT}px`;
    function paint() {
      const top = body.scrollTop;
      const height = body.clientHeight || 480;
      const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
      const last = Math.min(visible.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
      const frag = document.createDocumentFragment();
      for (let i = first; i < last; i++) {
        const t = visible[i];
        const row = h('div', { className: 'vt-row', role: 'row', 'aria-rowindex': i + 2 },
          h('div', { className: 'vt-cell c-name', role: 'cell', title: t.name, text: t.name }),
          h('div', { className: 'vt-cell c-dtype', role: 'cell', text: t.dtype }),
          h('div', { className: 'vt-cell c-shape', role: 'cell', text: t.shape }),
          h('div', { className: 'vt-cell c-bytes', role: 'cell', text: formatBytes(t.bytes) }));
        row.style.top = `${i * ROW_HEIGHT}px`;
        frag.appendChild(row);
      }
      spacer.replaceChildren(frag);
    }
    setCount();
    panel.appendChild(h('div', { className: 'filter-bar' }, input, count));
    panel.appendChild(h('div', { className: 'vt', role: 'table', 'aria-label': 'Tensors', 'aria-rowcount': visible.length + 1 }, head, body));
    // paint once the panel is in the document (clientHeight is known then)
    requestAnimationFrame(paint);
    paint();
  }

  function postRendered() {
    if (!report) return;
    vscode.postMessage({ type: 'rendered', state: {
      verdict: report.verdict,
      banner: document.getElementById('verdict')?.textContent || '',
      weightsOnly: document.getElementById('weights-only')?.textContent || '',
      globals: Array.isArray(report.globals) ? report.globals.length : 0,
      tensorRows: visible.length,
      metadataKeys: Object.keys(report.metadata || {}).length,
      sha256: sha256 || undefined,
      actions: [...document.querySelectorAll('#actions button')].map((b) => (b.textContent || '').trim()),
      danger: [...document.querySelectorAll('#danger code.call')].map((c) => c.textContent || ''),
      tabs: [...document.querySelectorAll('[role="tab"]')].map((t) => t.id.replace(/^tab-/, '')),
    } });
  }

  function showMessage(cls, text) {
    app.replaceChildren(h('p', { className: cls, role: 'status', text }));
  }

  window.addEventListener('message', (event) => {
    const m = event.data;
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'loading':
        fileName = String(m.fileName || '');
        if (!report) showMessage('loading', `Scanning ${fileName}…`);
        break;
      case 'refresh':
        vscode.postMessage({ type: 'rescan' });
        break;
      case 'report':
        report = m.report || {};
        fileName = String(m.fileName || '');
        canConvert = !!m.canConvert;
        convertRefusal = typeof m.convertRefusal === 'string' ? m.convertRefusal : null;
        danger = null; loads = null;
        sha256 = report.sha256 || null;
        shaBusy = false;
        disasm = null; disasmError = null; disasmRequested = false;
        rows = prepareRows(report.tensors);
        render();
        break;
      case 'error':
        report = null;
        showMessage('note error', `Safe Weights could not scan this file: ${String(m.message)}`);
        break;
      case 'sha256':
        sha256 = String(m.sha256); shaBusy = false; render();
        break;
      case 'danger':
        danger = (Array.isArray(m.calls) ? m.calls : []).map((c) => ({
          text: String(c.text ?? ''), global: String(c.global ?? ''),
          offset: typeof c.offset === 'number' ? c.offset : -1, ...(typeof c.member === 'string' ? { member: c.member } : {}) }));
        if (report) render();
        break;
      case 'loads':
        loads = (Array.isArray(m.sites) ? m.sites : []).map((s) => ({ label: String(s.label ?? ''), detail: String(s.detail ?? '') }));
        if (report) render();
        break;
      case 'sha256Error':
        shaBusy = false; render();
        app.appendChild(h('p', { className: 'note error', role: 'status', text: `SHA-256 failed: ${String(m.message)}` }));
        break;
      case 'disassembly':
        disasm = m.result || { text: '', decompiled: '', truncated: false }; disasmError = null;
        if (ui.tab === 'pickle') render();
        break;
      case 'disassemblyError':
        disasmError = `Disassembly failed: ${String(m.message)}`;
        if (ui.tab === 'pickle') render();
        break;
      case 'convertResult':
        if (m.result && /not available/i.test(String(m.result.message)) && !m.result.ok) convertAvailable = false;
        convertNote = { ok: !!(m.result && m.result.ok), message: String(m.result ? m.result.message : '') };
        render();
        break;
      case 'convertUnavailable':
        convertAvailable = false; convertNote = { ok: false, message: String(m.message) }; render();
        break;
    }
  });

  vscode.postMessage({ type: 'ready' });
}());
