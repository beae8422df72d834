// safe-weights-lsp in a real non-VS Code client: Debian's Neovim, headless, with the README's Neovim 0.7 setup
// (vim.lsp.start_client + buf_attach_client on FileType python, `safe-weights-lsp --stdio` found on PATH). It opens a
// .py file that unpickles, reads the diagnostics Neovim received (vim.diagnostic.get), edits the load away and
// reads them again. Needs `npm run build` (bin/safe-weights-lsp.js runs dist/server.js) and `neovim`.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { IS_CI, REPO_ROOT, requireBuilt } from '../setup';

interface Diag { lnum: number; col: number; end_col: number; message: string; code: string; source: string; severity: number }
interface Report { opened: Diag[]; edited: Diag[] | null; clients: string[]; filetype: string; timedOut: boolean }

const INIT_LUA = `
local out = os.getenv('SW_OUT')
vim.api.nvim_create_autocmd('FileType', {
  pattern = 'python',
  callback = function(args)
    local id = vim.lsp.start_client({ name = 'safe-weights', cmd = { 'safe-weights-lsp', '--stdio' }, root_dir = vim.fn.getcwd() })
    vim.lsp.buf_attach_client(args.buf, id)
  end,
})
local function rows(d)
  local r = {}
  for _, x in ipairs(d) do
    table.insert(r, { lnum = x.lnum, col = x.col, end_col = x.end_col, message = x.message, code = x.code, source = x.source, severity = x.severity })
  end
  return r
end
local report = { opened = {}, edited = vim.NIL, timedOut = false }
local phase = 1
local deadline = vim.loop.now() + 90000
local timer = vim.loop.new_timer()
local function finish()
  timer:stop()
  local names = {}
  for _, c in pairs(vim.lsp.get_active_clients()) do table.insert(names, c.name) end
  report.clients = names
  report.filetype = vim.bo.filetype
  local f = io.open(out, 'w')
  f:write(vim.fn.json_encode(report))
  f:close()
  vim.cmd('qa!')
end
timer:start(200, 200, vim.schedule_wrap(function()
  local d = vim.diagnostic.get(0)
  if vim.loop.now() > deadline then report.timedOut = true; finish(); return end
  if phase == 1 and #d > 0 then
    report.opened = rows(d)
    phase = 2
    -- the load edited away: the server must clear what it published
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'import pickle', 'x = 1' })
  elseif phase == 2 and #d == 0 then
    report.edited = {}
    finish()
  end
end))
`;

describe('safe-weights-lsp in Neovim (headless, Debian neovim)', function () {
  this.timeout(180_000);
  let tmp: string;
  let report: Report;

  before(function () {
    requireBuilt(this, 'dist/server.js');
    const probe = spawnSync('nvim', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      const msg = 'nvim is not installed (bash scripts/setup.sh installs Debian\'s neovim)';
      if (IS_CI) throw new Error(`CI=true: ${msg}`);
      console.warn(`\n  !!! SKIPPING: ${msg}\n`);
      this.skip();
    }
    tmp = mkdtempSync(join(tmpdir(), 'sw-nvim-'));
    // `safe-weights-lsp` on PATH, as `npm install -g` puts it
    mkdirSync(join(tmp, 'bin'));
    symlinkSync(join(REPO_ROOT, 'bin', 'safe-weights-lsp.js'), join(tmp, 'bin', 'safe-weights-lsp'));
    mkdirSync(join(tmp, 'project'));
    writeFileSync(join(tmp, 'project', 'x.py'), "import pickle; pickle.load(open('x','rb'))\n");
    writeFileSync(join(tmp, 'init.lua'), INIT_LUA);
    const r = spawnSync('nvim', ['--headless', '-i', 'NONE', '--noplugin', '-u', join(tmp, 'init.lua'), 'x.py'], {
      cwd: join(tmp, 'project'), encoding: 'utf8', timeout: 150_000,
      env: { ...process.env, PATH: `${join(tmp, 'bin')}${delimiter}${process.env.PATH}`, SW_OUT: join(tmp, 'out.json'), XDG_STATE_HOME: join(tmp, 'state'), XDG_DATA_HOME: join(tmp, 'data') },
    });
    assert.equal(r.status, 0, `nvim exited ${r.status}: ${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
    report = JSON.parse(readFileSync(join(tmp, 'out.json'), 'utf8')) as Report;
  });
  after(function () { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('the server attaches to the Python buffer', function () {
    assert.equal(report.filetype, 'python');
    assert.deepEqual(report.clients, ['safe-weights']);
    assert.equal(report.timedOut, false, JSON.stringify(report));
  });

  it('Neovim receives the SW102 diagnostic for pickle.load, as an error, on the call', function () {
    assert.equal(report.opened.length, 1, JSON.stringify(report.opened));
    const d = report.opened[0];
    assert.equal(d.code, 'SW102');
    assert.equal(d.severity, 1, 'vim.diagnostic.severity.ERROR');
    assert.equal(d.source, 'safe-weights');
    assert.match(d.message, /\bpickle\.load: /);
    // 0-based columns of `pickle.load(open('x','rb'))` in the line
    const line = "import pickle; pickle.load(open('x','rb'))";
    assert.equal(d.lnum, 0);
    assert.equal(d.col, line.indexOf('pickle.load'));
    assert.equal(d.end_col, line.length);
  });

  it('editing the load away clears the diagnostic (the document is synced)', function () {
    assert.deepEqual(report.edited, []);
  });
});
