// The machine's fast path switches on a const enum (inlined literals); it must name the same bytes as OP.
import * as assert from 'node:assert/strict';
import { Hot, OP } from '../../../server/src/models/pickle/opcodes';

describe('fast-path opcode constants', () => {
  it('equal the opcode table for every opcode the fast path handles', () => {
    const pairs: [string, number, number][] = [
      ['BINPUT', Hot.BINPUT, OP.BINPUT], ['LONG_BINPUT', Hot.LONG_BINPUT, OP.LONG_BINPUT], ['MEMOIZE', Hot.MEMOIZE, OP.MEMOIZE],
      ['BINGET', Hot.BINGET, OP.BINGET], ['LONG_BINGET', Hot.LONG_BINGET, OP.LONG_BINGET], ['BININT1', Hot.BININT1, OP.BININT1],
      ['BININT', Hot.BININT, OP.BININT], ['BININT2', Hot.BININT2, OP.BININT2], ['NONE', Hot.NONE, OP.NONE],
      ['NEWFALSE', Hot.NEWFALSE, OP.NEWFALSE], ['NEWTRUE', Hot.NEWTRUE, OP.NEWTRUE], ['EMPTY_TUPLE', Hot.EMPTY_TUPLE, OP.EMPTY_TUPLE],
      ['EMPTY_DICT', Hot.EMPTY_DICT, OP.EMPTY_DICT], ['EMPTY_LIST', Hot.EMPTY_LIST, OP.EMPTY_LIST], ['MARK', Hot.MARK, OP.MARK],
      ['BINUNICODE', Hot.BINUNICODE, OP.BINUNICODE], ['SHORT_BINUNICODE', Hot.SHORT_BINUNICODE, OP.SHORT_BINUNICODE],
      ['TUPLE', Hot.TUPLE, OP.TUPLE], ['TUPLE1', Hot.TUPLE1, OP.TUPLE1], ['TUPLE2', Hot.TUPLE2, OP.TUPLE2], ['TUPLE3', Hot.TUPLE3, OP.TUPLE3],
      ['REDUCE', Hot.REDUCE, OP.REDUCE], ['BINPERSID', Hot.BINPERSID, OP.BINPERSID], ['SETITEMS', Hot.SETITEMS, OP.SETITEMS],
      ['APPENDS', Hot.APPENDS, OP.APPENDS],
    ];
    for (const [name, hot, op] of pairs) assert.equal(hot, op, name);
  });
});
