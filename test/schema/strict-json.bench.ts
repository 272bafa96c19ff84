/**
 * Benchmark, not a test (mocha only runs *.test.js):
 *   npx tsc -p tsconfig.json; node dist/test/schema/strict-json.bench.js
 * Compares JSON.parse, parseStrictJson (count scan + JSON.parse + key walk) and a
 * single-pass JS parser that builds the value and checks names as it goes (the
 * design that was measured and not chosen; kept here so the figures reproduce).
 */
import { MESSAGE_TYPES } from '../../src/envelope/types.js';
import { parseStrictJson } from '../../src/schema/strict-json.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';

class Builder {
  private i = 0;
  constructor(private readonly s: string) {}
  fail(): never {
    throw new Error('MALFORMED');
  }
  ws(): void {
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else return;
    }
  }
  parse(): unknown {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i !== this.s.length) this.fail();
    return v;
  }
  value(depth: number): unknown {
    const c = this.s.charCodeAt(this.i);
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x22) return this.string();
    if (c === 0x74 && this.s.startsWith('true', this.i)) return ((this.i += 4), true);
    if (c === 0x66 && this.s.startsWith('false', this.i)) return ((this.i += 5), false);
    if (c === 0x6e && this.s.startsWith('null', this.i)) return ((this.i += 4), null);
    return this.number();
  }
  object(depth: number): Record<string, unknown> {
    if (depth > 64) this.fail();
    this.i++;
    const o: Record<string, unknown> = {};
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) return (this.i++, o);
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail();
      const k = this.string();
      if (Object.hasOwn(o, k)) this.fail();
      this.ws();
      if (this.s.charCodeAt(this.i++) !== 0x3a) this.fail();
      this.ws();
      const v = this.value(depth);
      if (k === '__proto__')
        Object.defineProperty(o, k, {
          value: v,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      else o[k] = v;
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x7d) return o;
      if (c !== 0x2c) this.fail();
    }
  }
  array(depth: number): unknown[] {
    if (depth > 64) this.fail();
    this.i++;
    const a: unknown[] = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x5d) return (this.i++, a);
    for (;;) {
      this.ws();
      a.push(this.value(depth));
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x5d) return a;
      if (c !== 0x2c) this.fail();
    }
  }
  string(): string {
    const s = this.s;
    const start = ++this.i;
    for (;;) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) return s.slice(start, this.i++);
      if (c === 0x5c) break;
      if (c < 0x20 || Number.isNaN(c)) this.fail();
      this.i++;
    }
    let out = s.slice(start, this.i);
    for (;;) {
      const c = s.charCodeAt(this.i++);
      if (c === 0x22) return out;
      if (c < 0x20 || Number.isNaN(c)) this.fail();
      if (c !== 0x5c) {
        out += String.fromCharCode(c);
        continue;
      }
      const e = s.charCodeAt(this.i++);
      if (e === 0x75) {
        const h = s.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail();
        out += String.fromCharCode(parseInt(h, 16));
        this.i += 4;
      } else {
        const m = (
          {
            0x22: '"',
            0x5c: '\\',
            0x2f: '/',
            0x62: '\b',
            0x66: '\f',
            0x6e: '\n',
            0x72: '\r',
            0x74: '\t',
          } as Record<number, string>
        )[e];
        if (m === undefined) this.fail();
        out += m;
      }
    }
  }
  number(): number {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.i;
    const r = m.exec(this.s);
    if (r === null) this.fail();
    this.i += r[0].length;
    return Number(r[0]);
  }
}
const buildParse = (s: string): unknown => new Builder(s).parse();

function payload(targetBytes: number): string {
  const e = sampleEnvelope('evidence.transfer') as unknown as { body: { items: unknown[] } };
  const item = e.body.items[0];
  while (JSON.stringify(e).length < targetBytes) e.body.items.push(structuredClone(item));
  return JSON.stringify(e);
}

function bench(name: string, fn: (s: string) => unknown, text: string): number {
  const iterations = Math.max(2000, Math.floor(40_000_000 / text.length));
  for (let i = 0; i < iterations / 4; i++) fn(text); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(text);
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  console.log(
    `${name.padEnd(16)} ${(ns / 1000).toFixed(2).padStart(8)} µs/op  ${((text.length / ns) * 1000).toFixed(0).padStart(5)} MB/s`,
  );
  return ns;
}

const texts = [
  ['request (~2 KB)', JSON.stringify(sampleEnvelope('evidence.request'))],
  ['handover', JSON.stringify(sampleEnvelope('suspect.handover'))],
  ['transfer ~5 KB', payload(5_000)],
  ['transfer ~20 KB', payload(20_000)],
  ['transfer ~200 KB', payload(200_000)],
] as const;
void MESSAGE_TYPES;
for (const [label, text] of texts) {
  console.log(`\n${label}: ${text.length} chars`);
  const base = bench('JSON.parse', JSON.parse, text);
  const strict = bench('parseStrictJson', parseStrictJson, text);
  const built = bench('builder', buildParse, text);
  console.log(
    `ratio vs JSON.parse: parseStrictJson ${(strict / base).toFixed(2)}x, builder ${(built / base).toFixed(2)}x`,
  );
}
