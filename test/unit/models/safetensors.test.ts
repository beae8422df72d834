import * as assert from 'node:assert/strict';
import { BytesSource } from '../../../server/src/models/source';
import { inspectSafetensors, looksLikeSafetensors, SafetensorsInfo } from '../../../server/src/models/formats/safetensors';

/** A safetensors file from a raw header string and a data section. */
function fileFromHeader(header: string, data: Uint8Array | number = 0, declaredLength?: bigint): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
function file(entries: Record<string, Entry | Record<string, string>>, data: number | Uint8Array): Uint8Array {
  return fileFromHeader(JSON.stringify(entries), data);
}
function inspect(bytes: Uint8Array): SafetensorsInfo { return inspectSafetensors(new BytesSource(bytes)); }
function assertError(info: SafetensorsInfo, re: RegExp): void {
  assert.equal(info.valid, false, 'expected the file to be invalid');
  assert.ok(info.errors.some((e) => re.test(e)), `no error matches ${re}; errors: ${JSON.stringify(info.errors)}`);
}

describe('safetensors', () => {
  describe('looksLikeSafetensors', () => {
    it('accepts a plausible header and rejects others', () => {
      const f = file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4);
      assert.equal(looksLikeSafetensors(f.subarray(0, 16), f.length), true);
      assert.equal(looksLikeSafetensors(fileFromHeader('[1]'), 11), false);               // not '{'
      assert.equal(looksLikeSafetensors(fileFromHeader('{}', 0, 1000n), 10), false);     // length beyond size
      assert.equal(looksLikeSafetensors(fileFromHeader('{}', 0, 1n), 10), false);        // N < 2
      assert.equal(looksLikeSafetensors(Buffer.from('PK\x03\x04xxxxxxxx'), 12), false);
    });
  });

  describe('valid files', () => {
    it('lists tensors with torch-style dtypes, absolute offsets, shapes and metadata', () => {
      const header = {
        __metadata__: { format: 'pt', note: 'hello' },
        'w.f32': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
        'w.bf16': { dtype: 'BF16', shape: [4], data_offsets: [24, 32] },
        'w.f8': { dtype: 'F8_E4M3', shape: [3], data_offsets: [32, 35] },
        'w.bool': { dtype: 'BOOL', shape: [1], data_offsets: [35, 36] },
        scalar: { dtype: 'I64', shape: [], data_offsets: [36, 44] },
        empty: { dtype: 'F16', shape: [0, 5], data_offsets: [44, 44] },
        c: { dtype: 'C64', shape: [1], data_offsets: [44, 52] },
      };
      const text = JSON.stringify(header);
      const bytes = fileFromHeader(text, 52);
      const info = inspect(bytes);
      assert.deepEqual(info.errors, []);
      assert.equal(info.valid, true);
      assert.equal(info.headerSize, Buffer.byteLength(text));
      assert.deepEqual(info.metadata, { format: 'pt', note: 'hello' });
      const base = 8 + info.headerSize;
      const byName = new Map(info.tensors.map((t) => [t.name, t]));
      assert.equal(info.tensors.length, 7);
      assert.deepEqual(byName.get('w.f32'), { name: 'w.f32', dtype: 'float32', shape: [2, 3], bytes: 24, offset: base });
      assert.equal(byName.get('w.bf16')?.dtype, 'bfloat16');
      assert.equal(byName.get('w.bf16')?.offset, base + 24);
      assert.equal(byName.get('w.f8')?.dtype, 'float8_e4m3fn');
      assert.equal(byName.get('w.bool')?.dtype, 'bool');
      assert.deepEqual(byName.get('scalar')?.shape, []);
      assert.equal(byName.get('scalar')?.bytes, 8);
      assert.equal(byName.get('empty')?.bytes, 0);
      assert.equal(byName.get('c')?.dtype, 'complex64');
    });

    it('accepts an empty header and space padding after the JSON (as writers pad to 8 bytes)', () => {
      assert.deepEqual(inspect(fileFromHeader('{}')).errors, []);
      const padded = inspect(fileFromHeader('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     ', 2));
      assert.deepEqual(padded.errors, []);
      assert.equal(padded.tensors[0].dtype, 'uint8');
    });

    it('keeps a "__proto__" metadata key as data, without touching the prototype', () => {
      const info = inspect(fileFromHeader('{"__metadata__":{"__proto__":"x","polluted":"no"}}'));
      assert.deepEqual(info.errors, []);
      assert.equal(Object.getOwnPropertyDescriptor(info.metadata, '__proto__')?.value, 'x');
      assert.equal(Object.getPrototypeOf(info.metadata), Object.prototype);
      assert.deepEqual(Object.keys(info.metadata), ['__proto__', 'polluted']);
    });

    it('reads only the header, not the tensor data', () => {
      const bytes = file({ a: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }, 4000);
      const src = new BytesSource(bytes);
      let read = 0;
      const counting = {
        size: src.size, read: (o: number, n: number) => { const b = src.read(o, n); read += b.length; return b; },
        readInto: (d: Uint8Array, at: number, o: number, n: number) => { const k = src.readInto(d, at, o, n); read += k; return k; }, close() {},
      };
      assert.equal(inspectSafetensors(counting).valid, true);
      assert.ok(read < 200, `read ${read} bytes`);
    });
  });

  describe('invalid files', () => {
    it('header larger than 100 MB', () => {
      assertError(inspect(fileFromHeader('{}', 0, 100_000_001n)), /exceeds the 100,000,000-byte limit/);
    });
    it('header length beyond the file', () => {
      assertError(inspect(fileFromHeader('{}', 0, 50n)), /beyond the end of the file/);
    });
    it('file shorter than 8 bytes', () => {
      assertError(inspect(new Uint8Array(5)), /too short/);
    });
    it('bad JSON', () => {
      assertError(inspect(fileFromHeader('{"a": ')), /not valid JSON/);
      assertError(inspect(fileFromHeader('{"a": 1,}')), /not valid JSON/);
    });
    it('invalid UTF-8', () => {
      const f = fileFromHeader('{"ab":1}');
      f[10] = 0xff;
      assertError(inspect(f), /not valid UTF-8/);
    });
    it('a header that is not an object', () => {
      assertError(inspect(fileFromHeader('[1, 2]')), /an array, not a JSON object/);
    });
    it('metadata that is not a string map', () => {
      assertError(inspect(fileFromHeader('{"__metadata__": {"epoch": 3}}')), /__metadata__ entry "epoch" is the number 3, not a string/);
      assertError(inspect(fileFromHeader('{"__metadata__": ["x"]}')), /__metadata__ is an array/);
    });
    it('unknown dtype', () => {
      assertError(inspect(file({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16)), /unknown dtype "F128"/);
      assertError(inspect(file({ a: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, 4)), /unknown dtype "f32"/);
    });
    it('negative or fractional shape entries, including 1e0 that JSON.parse would accept', () => {
      assertError(inspect(fileFromHeader('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}')), /shape entry the number -1/);
      assertError(inspect(fileFromHeader('{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', 1)), /shape entry the number 1.5/);
      assertError(inspect(fileFromHeader('{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}', 1)), /shape entry the number 1e0/);
      assertError(inspect(fileFromHeader('{"a":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}}', 2)), /shape entry a string/);
    });
    it('shape × dtype size that does not match the offsets', () => {
      assertError(inspect(file({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, 12)), /need 16 bytes, but its data_offsets cover 12/);
    });
    it('element counts that would overflow 64 bits', () => {
      const h = '{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}';
      assertError(inspect(fileFromHeader(h, 4)), /byte count overflows 64 bits/);
    });
    it('begin after end', () => {
      assertError(inspect(file({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, 4)), /begin after end/);
    });
    it('overlapping tensors', () => {
      const info = inspect(file({
        a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
        b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] },
      }, 6));
      assertError(info, /Tensor "b" overlaps tensor "a"/);
    });
    it('a gap between tensors', () => {
      assertError(inspect(file({
        a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
        b: { dtype: 'U8', shape: [4], data_offsets: [6, 10] },
      }, 10)), /gap of 2 bytes between tensor "a" and tensor "b"/);
    });
    it('data that does not start at 0', () => {
      assertError(inspect(file({ a: { dtype: 'U8', shape: [4], data_offsets: [3, 7] } }, 7)), /starts at byte 3 of the data section, not at 0/);
    });
    it('trailing bytes after the last tensor', () => {
      assertError(inspect(file({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 9)), /^5 trailing bytes/);
    });
    it('data beyond the end of the file', () => {
      assertError(inspect(file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)), /beyond the data section \(8 bytes\)/);
    });
    it('duplicate keys at the top level and inside an entry, even when spelled with escapes', () => {
      const h = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"dtype":"I8"}}';
      const info = inspect(fileFromHeader(h, 1));
      assertError(info, /Key "a" appears more than once in the header/);
      assertError(info, /Key "dtype" appears more than once in "a"/);
    });
    it('missing fields and non-object entries', () => {
      const info = inspect(fileFromHeader('{"a":{"shape":[1],"data_offsets":[0,1]},"b":7}', 1));
      assertError(info, /Tensor "a" has no dtype/);
      assertError(info, /Tensor "b" is the number 7/);
    });
    it('too deep nesting is an error, not a stack overflow', () => {
      const h = '{"__metadata__":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
      assertError(inspect(fileFromHeader(h)), /nesting deeper than 128/);
    });
    it('collects all errors, and caps how many it keeps', () => {
      const two = inspect(file({
        a: { dtype: 'X', shape: [1], data_offsets: [0, 1] },
        b: { dtype: 'F32', shape: [1], data_offsets: [1, 3] },
      }, 3));
      assert.ok(two.errors.length >= 2, JSON.stringify(two.errors));
      const many: Record<string, Entry> = {};
      for (let i = 0; i < 200; i++) many[`t${i}`] = { dtype: 'BAD', shape: [1], data_offsets: [i, i + 1] };
      const capped = inspect(file(many, 200));
      assert.equal(capped.errors.length, 51);
      assert.match(capped.errors[50], /and 150 more errors/);
    });
  });
});
