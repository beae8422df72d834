// Extension-host console messages as the page forwards them (codeAutomationLog(type, args)): mocha's spec reporter
// logs with printf-style placeholders (console.log('%d passing (%s)', 3, '2s')), so the arguments are formatted the
// way console.log would format them, not joined (which printed raw "%d passing (%s) 3 2s").
import { format } from 'node:util';

export function formatHostLog(args) {
  const list = Array.isArray(args) ? args : [args];
  return typeof list[0] === 'string' ? format(...list) : list.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
}
