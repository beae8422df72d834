// Python 3's unpickler maps Python 2 module/global names for protocols < 3 (fix_imports). We map the same
// way so `__builtin__.eval` is judged as `builtins.eval`. Facts from CPython's _compat_pickle tables.

const IMPORT_MAPPING: Record<string, string> = {
  __builtin__: 'builtins', copy_reg: 'copyreg', Queue: 'queue', SocketServer: 'socketserver',
  ConfigParser: 'configparser', repr: 'reprlib', tkFileDialog: 'tkinter.filedialog',
  tkSimpleDialog: 'tkinter.simpledialog', tkColorChooser: 'tkinter.colorchooser',
  tkCommonDialog: 'tkinter.commondialog', Dialog: 'tkinter.dialog', Tkdnd: 'tkinter.dnd',
  tkFont: 'tkinter.font', tkMessageBox: 'tkinter.messagebox', ScrolledText: 'tkinter.scrolledtext',
  Tkconstants: 'tkinter.constants', Tix: 'tkinter.tix', ttk: 'tkinter.ttk', Tkinter: 'tkinter',
  markupbase: '_markupbase', _winreg: 'winreg', thread: '_thread', dummy_thread: '_dummy_thread',
  dbhash: 'dbm.bsd', dumbdbm: 'dbm.dumb', dbm: 'dbm.ndbm', gdbm: 'dbm.gnu', xmlrpclib: 'xmlrpc.client',
  SimpleXMLRPCServer: 'xmlrpc.server', httplib: 'http.client', htmlentitydefs: 'html.entities',
  HTMLParser: 'html.parser', Cookie: 'http.cookies', cookielib: 'http.cookiejar',
  BaseHTTPServer: 'http.server', test: 'test.support', commands: 'subprocess', urlparse: 'urllib.parse',
  robotparser: 'urllib.robotparser', urllib2: 'urllib.request', anydbm: 'dbm', _abcoll: 'collections.abc',
  cPickle: 'pickle', _elementtree: 'xml.etree.ElementTree', FileDialog: 'tkinter.filedialog',
  SimpleDialog: 'tkinter.simpledialog', DocXMLRPCServer: 'xmlrpc.server', SimpleHTTPServer: 'http.server',
  CGIHTTPServer: 'http.server', UserDict: 'collections', UserList: 'collections', UserString: 'collections',
  whichdb: 'dbm', StringIO: 'io', cStringIO: 'io', exceptions: 'builtins',
};

const NAME_MAPPING: Record<string, [string, string]> = {
  '__builtin__.xrange': ['builtins', 'range'], '__builtin__.reduce': ['functools', 'reduce'],
  '__builtin__.intern': ['sys', 'intern'], '__builtin__.unichr': ['builtins', 'chr'],
  '__builtin__.unicode': ['builtins', 'str'], '__builtin__.long': ['builtins', 'int'],
  '__builtin__.basestring': ['builtins', 'str'], '__builtin__.raw_input': ['builtins', 'input'],
  '__builtin__.execfile': ['builtins', 'exec'], '__builtin__.apply': ['builtins', 'apply'],
  'itertools.izip': ['builtins', 'zip'], 'itertools.imap': ['builtins', 'map'],
  'itertools.ifilter': ['builtins', 'filter'], 'itertools.ifilterfalse': ['itertools', 'filterfalse'],
  'itertools.izip_longest': ['itertools', 'zip_longest'], 'UserDict.IterableUserDict': ['collections', 'UserDict'],
  'UserList.UserList': ['collections', 'UserList'], 'UserDict.UserDict': ['collections', 'UserDict'],
  'UserString.UserString': ['collections', 'UserString'], 'whichdb.whichdb': ['dbm', 'whichdb'],
  '_socket.fromfd': ['socket', 'fromfd'], '_multiprocessing.Connection': ['multiprocessing.connection', 'Connection'],
  'multiprocessing.process.Process': ['multiprocessing.context', 'Process'],
  'urllib.quote': ['urllib.parse', 'quote'], 'urllib.unquote': ['urllib.parse', 'unquote'],
  'urllib.urlopen': ['urllib.request', 'urlopen'], 'urllib.urlretrieve': ['urllib.request', 'urlretrieve'],
  'urllib2.urlopen': ['urllib.request', 'urlopen'], 'urllib.pathname2url': ['urllib.request', 'pathname2url'],
  'string.maketrans': ['builtins', 'bytes.maketrans'], 'os.getcwdu': ['os', 'getcwd'],
};

/** (module, name) as Python 3 would import them from a protocol 0-2 pickle. */
export function mapPy2Global(module: string, name: string): [string, string] {
  const m = NAME_MAPPING[`${module}.${name}`];
  if (m) return m;
  const mod = IMPORT_MAPPING[module];
  return mod ? [mod, name] : [module, name];
}
