import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isAuditEvent, parseEntry, serializeEntry } from '../../src/audit/entry.js';
import { AuditError } from '../../src/audit/errors.js';
import type { AuditDraft, AuditEvent } from '../../src/audit/types.js';

const SUBJECT = `sha256:${'ab'.repeat(32)}`;
const DIGEST = `sha256:${'cd'.repeat(32)}`;
const TS = new Date('2025-03-04T05:06:07.089Z');

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof AuditError ? e.reason : 'untyped';
  }
  return undefined;
}

describe('audit/entry (protocol §6.1)', () => {
  const full: AuditDraft = {
    detail: { code: 'OK', count: 2, final: true },
    inReplyTo: '5b1c7b0e-0000-4000-8000-000000000001',
    type: 'status.update',
    to: 'VN-LS',
    from: 'CN-GX-CZ',
    digest: DIGEST,
    messageId: '5b1c7b0e-0000-4000-8000-000000000002',
    actor: { subject: SUBJECT, role: 'officer', agency: 'CN-GX-CZ' },
    event: 'message.accepted',
  };

  it('writes members in the fixed entry order, whatever the draft order', () => {
    const bytes = serializeEntry(full, 41, TS);
    assert.equal(
      bytes.toString('utf8'),
      '{"v":1,"index":41,"ts":"2025-03-04T05:06:07.089Z","event":"message.accepted",' +
        `"actor":{"agency":"CN-GX-CZ","role":"officer","subject":"${SUBJECT}"},` +
        '"messageId":"5b1c7b0e-0000-4000-8000-000000000002",' +
        `"digest":"${DIGEST}","from":"CN-GX-CZ","to":"VN-LS","type":"status.update",` +
        '"inReplyTo":"5b1c7b0e-0000-4000-8000-000000000001","detail":{"code":"OK","count":2,"final":true}}',
    );
  });

  it('omits absent optional members and drops unknown ones', () => {
    const draft = {
      event: 'gateway.started',
      actor: { agency: 'GW-DEMO', role: 'gateway', subject: SUBJECT },
      extra: 'x',
    };
    const bytes = serializeEntry(draft as AuditDraft, 0, TS);
    assert.equal(
      bytes.toString(),
      `{"v":1,"index":0,"ts":"2025-03-04T05:06:07.089Z","event":"gateway.started","actor":{"agency":"GW-DEMO","role":"gateway","subject":"${SUBJECT}"}}`,
    );
  });

  it('round-trips through parseEntry', () => {
    const bytes = serializeEntry(full, 7, TS);
    const e = parseEntry(bytes);
    assert.equal(e.index, 7);
    assert.equal(e.ts, TS.toISOString());
    assert.deepEqual(e.detail, full.detail);
    assert.deepEqual(serializeEntry(e, e.index, new Date(e.ts)), bytes);
  });

  it('refuses garbage, extra members, duplicates and non-canonical encodings', () => {
    const good = serializeEntry(full, 7, TS).toString();
    const bad = (s: string | Buffer): string | undefined =>
      reason(() => parseEntry(Buffer.isBuffer(s) ? s : Buffer.from(s)));
    assert.equal(bad(good), undefined);
    assert.equal(bad('not json'), 'entry-malformed');
    assert.equal(bad('[]'), 'entry-malformed');
    assert.equal(bad(Buffer.from([0x7b, 0xff, 0x7d])), 'entry-malformed');
    assert.equal(bad(good.replace('{"v":1,', '{"v":1,"x":1,')), 'entry-malformed');
    assert.equal(bad(good.replace('{"v":1,', '{"v":1,"v":1,')), 'entry-malformed');
    assert.equal(bad(good.replace('"index":7', '"index": 7')), 'entry-malformed');
    assert.equal(bad(good.replace('{"v":1,"index":7,', '{"index":7,"v":1,')), 'entry-malformed');
    assert.equal(bad(good.replace('"index":7', '"index":7.5')), 'entry-malformed');
    assert.equal(bad(good.replace('"index":7', '"index":-1')), 'entry-malformed');
    assert.equal(bad(good.replace('"v":1', '"v":2')), 'entry-malformed');
    assert.equal(bad(good.replace('.089Z', 'Z')), 'entry-malformed');
    assert.equal(bad(good.replace('message.accepted', 'message.exploded')), 'entry-malformed');
    assert.equal(bad(good.replace(SUBJECT, 'sha256:xyz')), 'entry-malformed');
    assert.equal(bad(good.replace('"count":2', '"count":{"a":1}')), 'entry-malformed');
    assert.equal(bad(good.replace('"to":"VN-LS"', '"to":5')), 'entry-malformed');
    assert.equal(
      bad(good.replace('"role":"officer"', '"role":"officer","name":"x"')),
      'entry-malformed',
    );
  });

  it('refuses drafts it cannot serialize faithfully', () => {
    assert.equal(
      reason(() => serializeEntry({ ...full, detail: { n: Number.NaN } }, 1, TS)),
      'draft-invalid',
    );
    assert.equal(
      reason(() => serializeEntry(full, 1, new Date(Number.NaN))),
      'draft-invalid',
    );
    assert.equal(
      reason(() => serializeEntry(full, -1, TS)),
      'draft-invalid',
    );
    assert.equal(
      reason(() => serializeEntry({ ...full, event: 'nope' } as unknown as AuditDraft, 1, TS)),
      'draft-invalid',
    );
  });

  it('writes the bytes of JSON.stringify over the ordered entry object, for any draft', () => {
    fc.assert(
      fc.property(draftArb, fc.maxSafeNat(), tsArb, (draft, index, ts) => {
        const bytes = serializeEntry(draft, index, ts);
        assert.equal(bytes.toString('utf8'), referenceJson(draft, index, ts.toISOString()));
      }),
      { numRuns: 2000 },
    );
  });

  it('takes back exactly what it writes, for any draft', () => {
    fc.assert(
      fc.property(draftArb, fc.maxSafeNat(), tsArb, (draft, index, ts) => {
        // parseEntry insists on sha256 subjects and digests; the other strings may be anything.
        const d: AuditDraft = { ...draft, actor: { ...draft.actor, subject: SUBJECT } };
        if (d.digest !== undefined) d.digest = DIGEST;
        const bytes = serializeEntry(d, index, ts);
        const e = parseEntry(bytes);
        assert.deepEqual(serializeEntry(e, e.index, new Date(e.ts)), bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('drops a detail member named __proto__, as the object it was built from did', () => {
    const detail = JSON.parse('{"a":1,"__proto__":"x","b":true}') as Record<string, string>;
    const bytes = serializeEntry({ ...full, detail }, 3, TS).toString();
    assert.equal(bytes, referenceJson({ ...full, detail }, 3, TS.toISOString()));
    assert.ok(bytes.endsWith('"detail":{"a":1,"b":true}}'));
  });
});

const EVENTS = [
  'message.accepted',
  'message.delivered',
  'message.shredded',
  'file.stored',
  'gateway.started',
] as const satisfies readonly AuditEvent[];

/** Strings with quotes, backslashes, controls, non-ASCII and lone surrogates. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u007f', '\u2028', '\ud800', 'a', '/') }),
);
const detailArb = fc.dictionary(
  fc.oneof(text, fc.constantFrom('__proto__', '0', '10', '2', 'constructor')),
  fc.oneof(text, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean()),
  { maxKeys: 6 },
);
const draftArb: fc.Arbitrary<AuditDraft> = fc.record(
  {
    event: fc.constantFrom(...EVENTS),
    actor: fc.record({ agency: text, role: text, subject: text }),
    messageId: text,
    digest: text,
    from: text,
    to: text,
    type: text,
    inReplyTo: text,
    detail: detailArb,
  },
  { requiredKeys: ['event', 'actor'] },
);
const tsArb = fc.date({
  min: new Date('0000-01-01T00:00:00.000Z'),
  max: new Date('9999-12-31T23:59:59.999Z'),
  noInvalidDate: true,
});

/** The entry format as first written: an object built in member order, then JSON.stringify. */
function referenceJson(draft: AuditDraft, index: number, ts: string): string {
  const e: AuditDraft & { index: number; ts: string } = { ...draft, index, ts };
  assert.ok(isAuditEvent(e.event));
  const out: Record<string, unknown> = {
    v: 1,
    index: e.index,
    ts: e.ts,
    event: e.event,
    actor: { agency: e.actor.agency, role: e.actor.role, subject: e.actor.subject },
  };
  for (const k of ['messageId', 'digest', 'from', 'to', 'type', 'inReplyTo'] as const) {
    if (e[k] !== undefined) out[k] = e[k];
  }
  if (e.detail !== undefined) {
    const detail: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(e.detail)) detail[k] = val;
    out['detail'] = detail;
  }
  return JSON.stringify(out);
}
