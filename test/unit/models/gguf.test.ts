import * as assert from 'node:assert/strict';
import { BytesSource, ByteSource } from '../../../server/src/models/source';
import { inspectGguf, looksLikeGguf, GgufInfo } from '../../../server/src/models/formats/gguf';
import { scanChatTemplate } from '../../../server/src/models/chatTemplateRisk';

// --- a tiny GGUF writer ---------------------------------------------------------------------------------
const T = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10, i64: 11, f64: 12 } as const;

class Writer {
  private parts: Buffer[] = [];
  constructor(readonly version = 3) {}
  get length(): number { return this.parts.reduce((n, p) => n + p.length, 0); }
  raw(b: Uint8Array | number[]): this { this.parts.push(Buffer.from(b)); return this; }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return this.raw(b); }
  u64(v: number | bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return this.raw(b); }
  /** a count or length: 32-bit in v1, 64-bit after */
  n(v: number | bigint): this { return this.version === 1 ? this.u32(Number(v)) : this.u64(v); }
  str(s: string): this { const b = Buffer.from(s, 'utf8'); return this.n(b.length).raw(b); }
  scalar(t: number, v: number | bigint | boolean): this {
    const sizes = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
    const b = Buffer.alloc(sizes[t]);
    switch (t) {
      case T.u8: b.writeUInt8(Number(v)); break;
      case T.i8: b.writeInt8(Number(v)); break;
      case T.u16: b.writeUInt16LE(Number(v)); break;
      case T.i16: b.writeInt16LE(Number(v)); break;
      case T.u32: b.writeUInt32LE(Number(v)); break;
      case T.i32: b.writeInt32LE(Number(v)); break;
      case T.f32: b.writeFloatLE(Number(v)); break;
      case T.bool: b.writeUInt8(v ? 1 : 0); break;
      case T.u64: b.writeBigUInt64LE(BigInt(v)); break;
      case T.i64: b.writeBigInt64LE(BigInt(v)); break;
      case T.f64: b.writeDoubleLE(Number(v)); break;
      default: throw new Error('not a scalar type');
    }
    return this.raw(b);
  }
  header(nTensors: number, nKv: number): this { return this.raw(Buffer.from('GGUF')).u32(this.version).n(nTensors).n(nKv); }
  kv(key: string, t: number, v: number | bigint | boolean | string): this {
    this.str(key).u32(t);
    return t === T.str ? this.str(v as string) : this.scalar(t, v as number);
  }
  kvArray(key: string, et: number, items: (number | string)[]): this {
    this.str(key).u32(T.arr).u32(et).n(items.length);
    for (const it of items) { if (et === T.str) this.str(it as string); else this.scalar(et, it as number); }
    return this;
  }
  tensor(name: string, dims: number[], type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.n(d);
    return this.u32(type).u64(offset);
  }
  pad(align = 32): this { const r = this.length % align; return r ? this.raw(new Uint8Array(align - r)) : this; }
  bytes(): Uint8Array { return new Uint8Array(Buffer.concat(this.parts)); }
}

function inspect(b: Uint8Array): GgufInfo { return inspectGguf(new BytesSource(b)); }
function assertError(info: GgufInfo, re: RegExp): void {
  assert.equal(info.valid, false, 'expected the file to be invalid');
  assert.ok(info.errors.some((e) => re.test(e)), `no error matches ${re}; errors: ${JSON.stringify(info.errors)}`);
}

/** A valid v3 file: metadata of several kinds and three tensors (F32, F16, Q4_K). */
function validFile(): { bytes: Uint8Array; dataStart: number } {
  const w = new Writer(3).header(3, 6)
    .kv('general.architecture', T.str, 'llama')
    .kv('general.alignment', T.u32, 64)
    .kv('llama.rope.freq_base', T.f32, 0.1)
    .kv('general.file_type', T.i64, -3n)
    .kv('flag', T.bool, true)
    .kvArray('tokenizer.ggml.scores', T.f32, [1.5, -2, 0.25])
    .tensor('tok_embd.weight', [4, 2], 0, 0)         // F32: 32 bytes
    .tensor('norm.weight', [8], 1, 64)                 // F16: 16 bytes, padded to 64
    .tensor('blk.0.attn_q.weight', [256, 2], 12, 128);  // Q4_K: 2 blocks × 144 = 288 bytes
  w.pad(64);
  const dataStart = w.length;
  w.raw(new Uint8Array(128 + 288));
  return { bytes: w.bytes(), dataStart };
}

describe('gguf', () => {
  it('looksLikeGguf checks the magic', () => {
    assert.equal(looksLikeGguf(Buffer.from('GGUF\x03\0\0\0')), true);
    assert.equal(looksLikeGguf(Buffer.from('GGML')), false);
    assert.equal(looksLikeGguf(Buffer.from('GG')), false);
  });

  describe('valid files', () => {
    it('reads version, alignment, metadata and the tensor table of a v3 file', () => {
      const { bytes, dataStart } = validFile();
      const info = inspect(bytes);
      assert.deepEqual(info.errors, []);
      assert.equal(info.valid, true);
      assert.equal(info.version, 3);
      assert.equal(info.alignment, 64);
      assert.equal(info.dataOffset, dataStart);
      assert.equal(info.metadata['general.architecture'], 'llama');
      assert.equal(info.metadata['llama.rope.freq_base'], '0.1');
      assert.equal(info.metadata['general.file_type'], '-3');
      assert.equal(info.metadata['flag'], 'true');
      assert.equal(info.metadata['tokenizer.ggml.scores'], '[float32 × 3] 1.5, -2, 0.25');
      assert.deepEqual(info.tensors, [
        { name: 'tok_embd.weight', dtype: 'F32', shape: [4, 2], bytes: 32, offset: dataStart },
        { name: 'norm.weight', dtype: 'F16', shape: [8], bytes: 16, offset: dataStart + 64 },
        { name: 'blk.0.attn_q.weight', dtype: 'Q4_K', shape: [256, 2], bytes: 288, offset: dataStart + 128 },
      ]);
      assert.deepEqual(info.chatTemplates, []);
      assert.deepEqual(info.templateFindings, []);
    });

    it('reads a v1 file (32-bit counts, lengths and dimensions) with the default alignment', () => {
      const w = new Writer(1).header(1, 1).kv('general.name', T.str, 'old').tensor('w', [32], 8, 0); // Q8_0: 34 bytes
      w.pad(32);
      const start = w.length;
      w.raw(new Uint8Array(34));
      const info = inspect(w.bytes());
      assert.deepEqual(info.errors, []);
      assert.equal(info.version, 1);
      assert.equal(info.alignment, 32);
      assert.equal(info.metadata['general.name'], 'old');
      assert.deepEqual(info.tensors, [{ name: 'w', dtype: 'Q8_0', shape: [32], bytes: 34, offset: start }]);
    });

    it('computes sizes from ggml block sizes for several quantised types', () => {
      const cases: [number, string, number, number][] = [ // type id, name, elements, bytes
        [2, 'Q4_0', 64, 36], [14, 'Q6_K', 256, 210], [30, 'BF16', 3, 6], [23, 'IQ4_XS', 512, 272],
        [39, 'MXFP4', 32, 17], [35, 'TQ2_0', 256, 66], [9, 'Q8_1', 32, 36], [15, 'Q8_K', 256, 292],
      ];
      for (const [id, name, n, bytes] of cases) {
        const w = new Writer(3).header(1, 0).tensor('t', [n], id, 0).pad();
        w.raw(new Uint8Array(bytes));
        const info = inspect(w.bytes());
        assert.deepEqual(info.errors, [], name);
        assert.equal(info.tensors[0].dtype, name);
        assert.equal(info.tensors[0].bytes, bytes, name);
      }
    });

    it('summarises big arrays without keeping them, and keeps small ones', () => {
      const vocab = Array.from({ length: 5000 }, (_, i) => `tok${i}`);
      const w = new Writer(3).header(0, 3)
        .kvArray('tokenizer.ggml.tokens', T.str, vocab)
        .kvArray('tokenizer.ggml.token_type', T.i32, Array.from({ length: 5000 }, () => 1))
        .kvArray('small', T.str, ['a', 'b"c']);
      const info = inspect(w.bytes());
      assert.deepEqual(info.errors, []);
      assert.equal(info.metadata['tokenizer.ggml.tokens'], '[string × 5000]');
      assert.equal(info.metadata['tokenizer.ggml.token_type'], '[int32 × 5000]');
      assert.equal(info.metadata['small'], '[string × 2] "a", "b\\"c"');
    });

    it('reads nested arrays and truncates long strings', () => {
      const w = new Writer(3).header(0, 2);
      w.str('nested').u32(T.arr).u32(T.arr).n(2);
      w.u32(T.u8).n(2).scalar(T.u8, 1).scalar(T.u8, 2);
      w.u32(T.u8).n(1).scalar(T.u8, 3);
      w.kv('long', T.str, 'x'.repeat(5000));
      const info = inspect(w.bytes());
      assert.deepEqual(info.errors, []);
      assert.equal(info.metadata['nested'], '[array × 2] [uint8 × 2] 1, 2, [uint8 × 1] 3');
      assert.equal(info.metadata['long'].length, 2001);
      assert.ok(info.metadata['long'].endsWith('…'));
    });

    it('keeps a "__proto__" metadata key as data, without touching the prototype', () => {
      const info = inspect(new Writer(3).header(0, 1).kv('__proto__', T.str, 'x').bytes());
      assert.deepEqual(info.errors, []);
      assert.equal(Object.getOwnPropertyDescriptor(info.metadata, '__proto__')?.value, 'x');
      assert.equal(Object.getPrototypeOf(info.metadata), Object.prototype);
    });

    it('reads the metadata lazily and never the tensor data', () => {
      const w = new Writer(3).header(1, 1).kv('general.name', T.str, 'lazy').tensor('w', [1 << 20], 0, 0).pad();
      w.raw(new Uint8Array(4 << 20));
      const bytes = w.bytes();
      const base = new BytesSource(bytes);
      let read = 0;
      const counting: ByteSource = {
        size: base.size, read: (o, n) => { const b = base.read(o, n); read += b.length; return b; },
        readInto: (d, at, o, n) => { const k = base.readInto(d, at, o, n); read += k; return k; }, close() {},
      };
      const info = inspectGguf(counting);
      assert.equal(info.valid, true, JSON.stringify(info.errors));
      assert.ok(read <= 4096 + 8, `read ${read} bytes of ${bytes.length}`);
    });
  });

  describe('invalid files', () => {
    it('bad magic and bad versions', () => {
      assertError(inspect(Buffer.from('GGML\x03\0\0\0')), /GGUF magic/);
      assertError(inspect(new Writer(4).header(0, 0).bytes()), /Unsupported GGUF version 4/);
      assertError(inspect(new Writer(0).header(0, 0).bytes()), /Unsupported GGUF version 0/);
      assertError(inspect(Buffer.from([0x47, 0x47, 0x55, 0x46, 0, 0, 0, 3, ...new Array(16).fill(0)])), /big-endian/);
    });
    it('a truncated header', () => {
      assertError(inspect(Buffer.from('GGUF\x03\0')), /ends inside the header/);
    });
    it('a truncated key/value', () => {
      const b = new Writer(3).header(0, 1).kv('general.name', T.str, 'abcdef').bytes();
      assertError(inspect(b.subarray(0, b.length - 3)), /value of "general.name" declares 6 bytes/);
      const c = new Writer(3).header(0, 1).kv('general.alignment', T.u32, 32).bytes();
      assertError(inspect(c.subarray(0, c.length - 2)), /ends inside the header/);
    });
    it('a string length beyond the file is an error, not an allocation', () => {
      const w = new Writer(3).header(0, 1).str('k').u32(T.str).u64(0xffffffffffffn).raw(Buffer.from('short'));
      assertError(inspect(w.bytes()), /declares 281474976710655 bytes/);
    });
    it('counts larger than the file can hold', () => {
      assertError(inspect(new Writer(3).header(0, 1_000_000).bytes()), /1000000 metadata entries, more than the file can hold/);
      assertError(inspect(new Writer(3).header(2n ** 40n as unknown as number, 0).bytes()), /tensors, more than the file can hold/);
    });
    it('an array count beyond the file', () => {
      const w = new Writer(3).header(0, 1).str('a').u32(T.arr).u32(T.u32).u64(1n << 50n);
      assertError(inspect(w.bytes()), /declares 1125899906842624 uint32 items/);
    });
    it('unknown value types, as values and as array element types', () => {
      assertError(inspect(new Writer(3).header(0, 1).str('x').u32(13).u32(0).bytes()), /"x" has unknown value type 13/);
      assertError(inspect(new Writer(3).header(0, 1).str('y').u32(T.arr).u32(99).u64(0).bytes()), /"y" is an array of unknown value type 99/);
    });
    it('duplicate metadata keys and tensor names', () => {
      const w = new Writer(3).header(2, 2).kv('a', T.u8, 1).kv('a', T.u8, 2).tensor('t', [1], 0, 0).tensor('t', [1], 0, 32).pad();
      w.raw(new Uint8Array(64));
      const info = inspect(w.bytes());
      assertError(info, /Metadata key "a" appears more than once/);
      assertError(info, /Tensor name "t" appears more than once/);
    });
    it('unknown and removed ggml types', () => {
      const w = new Writer(3).header(2, 0).tensor('a', [4], 99, 0).tensor('b', [32], 31, 0).pad();
      w.raw(new Uint8Array(64));
      const info = inspect(w.bytes());
      assertError(info, /"a" has unknown ggml type 99/);
      assertError(info, /"b" uses ggml type 31 \(Q4_0_4_4\), which was removed/);
    });
    it('a first dimension that is not a multiple of the block size', () => {
      const w = new Writer(3).header(1, 0).tensor('q', [33], 2, 0).pad();
      w.raw(new Uint8Array(64));
      assertError(inspect(w.bytes()), /first dimension 33, not a multiple of the Q4_0 block size 32/);
    });
    it('too many dimensions', () => {
      assertError(inspect(new Writer(3).header(1, 0).tensor('d', [1, 1, 1, 1, 1], 0, 0).pad().bytes()), /5 dimensions; ggml allows at most 4/);
    });
    it('misaligned tensor offsets', () => {
      const w = new Writer(3).header(2, 0).tensor('a', [4], 0, 0).tensor('b', [4], 0, 16).pad();
      w.raw(new Uint8Array(64));
      assertError(inspect(w.bytes()), /"b" data offset 16 is not a multiple of the alignment 32/);
    });
    it('tensors not packed in table order', () => {
      const w = new Writer(3).header(2, 0).tensor('a', [4], 0, 64).tensor('b', [4], 0, 0).pad();
      w.raw(new Uint8Array(96));
      assertError(inspect(w.bytes()), /"a" data offset is 64, expected 0/);
    });
    it('tensor data beyond the end of the file', () => {
      const w = new Writer(3).header(1, 0).tensor('big', [1000], 0, 0).pad();
      w.raw(new Uint8Array(100));
      assertError(inspect(w.bytes()), /"big" data \[0, 4000\) lies beyond the end of the file/);
    });
    it('a non-power-of-two or mistyped alignment', () => {
      assertError(inspect(new Writer(3).header(0, 1).kv('general.alignment', T.u32, 48).bytes()), /alignment 48 is not a power of two/);
      assertError(inspect(new Writer(3).header(0, 1).kv('general.alignment', T.u32, 0).bytes()), /alignment 0 is not a power of two/);
      assertError(inspect(new Writer(3).header(0, 1).kv('general.alignment', T.u64, 32).bytes()), /general.alignment has type uint64/);
      assertError(inspect(new Writer(3).header(0, 1).kv('general.alignment', T.str, '32').bytes()), /general.alignment has type string/);
    });
    it('a negative dimension', () => {
      const w = new Writer(3).header(1, 0).tensor('n', [0], 0, 0);
      const b = w.bytes();
      // overwrite the one dimension (8 bytes before type and offset) with -1
      new DataView(b.buffer).setBigInt64(b.length - 20, -1n, true);
      assertError(inspect(b), /"n" has a negative dimension/);
    });
  });

  describe('chat templates', () => {
    function withTemplate(key: string, template: string): GgufInfo {
      return inspect(new Writer(3).header(0, 2).kv('general.name', T.str, 'm').kv(key, T.str, template).bytes());
    }

    it('collects templates whole and reports nothing for ordinary ones', () => {
      const normal = [
        // Llama 3 style
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        // ChatML style
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        // Mistral style
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
        // Gemma style
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
        // Llama 3.1 style with tools and dates
        "{%- set ns = namespace(found=false) -%}{%- if not date_string is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- endif %}{{- \"Today Date: \" + date_string + \"\\n\\n\" }}{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}{%- for tool_call in message.tool_calls %}{{- '<tool_call>\\n{\"name\": \"' + tool_call.function.name + '\"}' }}{%- endfor %}",
      ];
      for (const t of normal) {
        const info = withTemplate('tokenizer.chat_template', t);
        assert.deepEqual(info.chatTemplates, [{ key: 'tokenizer.chat_template', value: t }]);
        assert.deepEqual(info.templateFindings, [], t.slice(0, 40));
        assert.equal(info.valid, true);
      }
    });

    it('keeps a template longer than the metadata display limit whole', () => {
      const t = '{{ x }}'.repeat(1000) + "{{ ''.__class__ }}";
      const info = withTemplate('tokenizer.chat_template.tool_use', t);
      assert.equal(info.chatTemplates[0].value, t);
      assert.ok(info.metadata['tokenizer.chat_template.tool_use'].length <= 2001);
      assert.equal(info.templateFindings.length, 1);
      assert.match(info.templateFindings[0], /^tokenizer\.chat_template\.tool_use: "__class__"/);
    });

    it('reports the CVE-2024-34359 style payload', () => {
      const payload = "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/pwn\")}}{%endif%}{% endfor %}";
      const info = withTemplate('tokenizer.chat_template', payload);
      const all = info.templateFindings.join('\n');
      for (const s of ['__class__', '__base__', '__subclasses__', '__builtins__', '__import__', 'popen']) assert.ok(all.includes(s), s);
      assert.equal(info.valid, true); // well-formed file; the danger is reported separately
    });

    const positives: [string, RegExp][] = [
      ["{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}", /name-mangled/],
      ["{{ lipsum.__globals__['os'].popen('id').read() }}", /__globals__/],
      ["{{ cycler.__init__.__globals__.os.system('id') }}", /calls into the os module/],
      ["{{ joiner.__init__.__globals__ }}", /Jinja\/Flask global/],
      ["{{ namespace.__init__.__globals__ }}", /Jinja\/Flask global/],
      ["{{ request.application.__self__._get_data_for_json.__globals__ }}", /request\.application/],
      ["{{ ()|attr('__cl' ~ 'ass__') }}", /attr filter/],
      ["{% set a = '__cla' ~ 'ss__' %}{{ x[a] }}", /string pieces/],
      ["{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}", /escape sequences/],
      ["{{ x|attr(['_','_','class','_','_']|join) }}", /joins underscore pieces/],
      ["{{ x|attr('%c%c%c%c%c%c%c%c%c'|format(95,95,99,108,97,115,115,95,95)) }}", /with format/],
      ["{{ eval('1+1') }}", /evaluates code/],
      ["{% import 'other.j2' as o %}", /loads another template/],
      ["{{ x.mro() }}", /mro\(\)/],
      ["{{ subprocess }}", /subprocess/],
    ];
    for (const [t, re] of positives) {
      it(`flags ${t.slice(0, 50)}`, () => {
        const found = scanChatTemplate(t);
        assert.ok(found.some((f) => re.test(f)), `${re} not in ${JSON.stringify(found)}`);
      });
    }

    it('reports findings per template key', () => {
      const w = new Writer(3).header(0, 2)
        .kv('tokenizer.chat_template', T.str, '{{ messages }}')
        .kv('tokenizer.chat_template.rag', T.str, '{{ ().__class__ }}');
      const info = inspect(w.bytes());
      assert.equal(info.chatTemplates.length, 2);
      assert.equal(info.templateFindings.length, 1);
      assert.match(info.templateFindings[0], /^tokenizer\.chat_template\.rag: /);
    });

    it('a chat template that is not a string is an error', () => {
      assertError(inspect(new Writer(3).header(0, 1).kv('tokenizer.chat_template', T.u32, 1).bytes()), /chat template must be a string/);
    });
  });
});
