import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MESSAGE_TYPES, type MessageType } from '../../src/envelope/types.js';
import type { ValidationIssue } from '../../src/errors.js';
import { createSchemaSet, isRfc3339DateTime, type SchemaSet } from '../../src/schema/index.js';
import { SAMPLE_PERSONAL_STRINGS, sampleEnvelope } from '../fixtures/envelopes.js';

// dist/test/schema/*.js → package root
const SCHEMA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../schemas');

type Json = Record<string, unknown>;
const clone = <T>(v: T): T => structuredClone(v);

/** Mutable view of an envelope for breaking it. */
function env(type: MessageType): Json {
  return clone(sampleEnvelope(type)) as unknown as Json;
}
function at(root: Json, ...path: (string | number)[]): Json {
  let v: unknown = root;
  for (const p of path) v = (v as Record<string | number, unknown>)[p];
  return v as Json;
}
function only(issues: ValidationIssue[] | null): ValidationIssue {
  expect(issues, 'expected a validation failure').to.be.an('array').with.length.greaterThan(0);
  return (issues as ValidationIssue[])[0] as ValidationIssue;
}

describe('schema/createSchemaSet', () => {
  let set: SchemaSet;
  before(() => {
    set = createSchemaSet(SCHEMA_DIR);
  });

  describe('sample envelopes', () => {
    for (const type of MESSAGE_TYPES) {
      it(`accepts the ${type} fixture`, () => {
        expect(set.validateEnvelope(sampleEnvelope(type))).to.equal(null);
      });
    }
    it('fixtures are fresh (new id each call) and list their personal strings', () => {
      const a = sampleEnvelope('evidence.request');
      const b = sampleEnvelope('evidence.request');
      expect(a.id).to.not.equal(b.id);
      const all = MESSAGE_TYPES.map((t) => JSON.stringify(sampleEnvelope(t))).join('\n');
      for (const s of SAMPLE_PERSONAL_STRINGS)
        expect(all, s).to.include(JSON.stringify(s).slice(1, -1));
    });
    it('overrides apply', () => {
      const e = sampleEnvelope('status.update', {
        inReplyTo: '11111111-1111-4111-8111-111111111111',
        to: 'CN-GX-CZ',
        from: 'VN-LS',
      });
      expect(e.inReplyTo).to.equal('11111111-1111-4111-8111-111111111111');
      expect(set.validateEnvelope(e)).to.equal(null);
    });
  });

  describe('envelope members', () => {
    const required = [
      'id',
      'type',
      'version',
      'from',
      'to',
      'createdAt',
      'caseRef',
      'priority',
      'body',
    ];
    for (const member of required) {
      it(`refuses an envelope without ${member}`, () => {
        const e = env('evidence.request');
        delete e[member];
        const issue = only(set.validateEnvelope(e));
        expect(issue).to.include({ keyword: 'required', path: `/${member}` });
      });
    }

    it('refuses an unknown top-level member, naming the member (not its value)', () => {
      const e = env('evidence.request');
      e['extra~/member'] = 'TESTPERSON';
      const issues = set.validateEnvelope(e);
      // RFC 6901 §3 escapes: ~ as ~0, / as ~1.
      expect(only(issues)).to.include({
        keyword: 'additionalProperties',
        path: '/extra~0~1member',
      });
      expect(JSON.stringify(issues)).to.not.include('TESTPERSON');
    });

    it('reports every failure, up to 20, each with its path; enum failures list the allowed values', () => {
      const e = env('funds.freeze');
      e['priority'] = 'asap';
      e['unexpected'] = true;
      delete e['caseRef'];
      at(e, 'body', 'accounts', 0)['iban'] = 'x';
      const issues = set.validateEnvelope(e)!;
      const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
      expect(byPath['/priority']).to.deep.include({
        keyword: 'enum',
        allowedValues: ['routine', 'urgent', 'emergency'],
      });
      expect(byPath['/unexpected']?.keyword).to.equal('additionalProperties');
      expect(byPath['/caseRef']?.keyword).to.equal('required');
      expect(byPath['/body/accounts/0/iban']?.keyword).to.equal('additionalProperties');
      expect(issues.some((i) => i.keyword === 'if')).to.equal(false);

      const many = env('evidence.request');
      for (let i = 0; i < 30; i++) many[`extra${i}`] = i;
      const capped = set.validateEnvelope(many)!;
      expect(capped).to.have.length(20);
      expect(new Set(capped.map((i) => i.path)).size).to.equal(20);
    });

    it('refuses a wrong enum value', () => {
      const e = env('funds.freeze');
      e['priority'] = 'asap';
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'enum', path: '/priority' });
      const f = env('funds.freeze');
      f['type'] = 'funds.seize';
      expect(only(set.validateEnvelope(f))).to.include({ keyword: 'enum', path: '/type' });
      const g = env('funds.freeze');
      g['handling'] = 'H4';
      expect(only(set.validateEnvelope(g))).to.include({ keyword: 'enum', path: '/handling' });
    });

    it('refuses version other than 1', () => {
      const e = env('funds.freeze');
      e['version'] = 2;
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'const', path: '/version' });
    });

    it('refuses an upper-case UUID in id and inReplyTo', () => {
      const e = env('evidence.request');
      e['id'] = (e['id'] as string).toUpperCase().replace(/^[0-9]/, 'A');
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'pattern', path: '/id' });
      const r = env('status.update');
      r['inReplyTo'] = 'ABCDEF00-0000-4000-8000-000000000000';
      expect(only(set.validateEnvelope(r))).to.include({ keyword: 'pattern', path: '/inReplyTo' });
    });

    it('refuses malformed agency ids', () => {
      for (const bad of ['cn-gx-cz', 'CN', 'CNX-GX', 'CN-GX-CZ-A-B-C', 'CN-TOOLONGSEGMENT1']) {
        const e = env('evidence.request');
        e['to'] = bad;
        expect(only(set.validateEnvelope(e)), bad).to.include({ keyword: 'pattern', path: '/to' });
      }
    });

    for (const type of ['evidence.transfer', 'status.update'] as const) {
      it(`requires inReplyTo on ${type}`, () => {
        const e = env(type);
        delete e['inReplyTo'];
        expect(only(set.validateEnvelope(e))).to.include({
          keyword: 'required',
          path: '/inReplyTo',
        });
      });
    }
    it('does not require inReplyTo on evidence.request', () => {
      const e = env('evidence.request');
      delete e['inReplyTo'];
      expect(set.validateEnvelope(e)).to.equal(null);
    });

    it('refuses caseRef empty or over 128 characters', () => {
      const e = env('evidence.request');
      e['caseRef'] = 'x'.repeat(129);
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'maxLength', path: '/caseRef' });
      e['caseRef'] = '';
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'minLength', path: '/caseRef' });
    });

    it('refuses a date-time without offset, and impossible dates', () => {
      for (const bad of [
        '2024-01-01T00:00:00',
        '2024-01-01T00:00:00+0800',
        '2024-01-01T00:00:00+08',
        '2024-01-01 00:00:00Z',
        '2023-02-29T00:00:00Z',
        '2024-13-01T00:00:00Z',
        '2024-01-01T24:00:00Z',
        '2024-12-31T23:59:60Z',
      ]) {
        const e = env('evidence.request');
        e['createdAt'] = bad;
        expect(only(set.validateEnvelope(e)), bad).to.include({
          keyword: 'format',
          path: '/createdAt',
        });
      }
    });

    it('accepts RFC 3339 date-times with offsets, fractions and lower-case t/z', () => {
      for (const ok of [
        '2024-02-29T23:59:59.123456+07:00',
        '2024-01-01t00:00:00z',
        '2024-06-30T12:00:00-03:30',
      ]) {
        expect(isRfc3339DateTime(ok), ok).to.equal(true);
        expect(Number.isFinite(Date.parse(ok)), ok).to.equal(true);
      }
    });

    it('refuses a non-object envelope and body', () => {
      expect(only(set.validateEnvelope([]))).to.include({ keyword: 'type', path: '' });
      expect(only(set.validateEnvelope(null))).to.include({ keyword: 'type', path: '' });
      const e = env('evidence.request');
      e['body'] = [];
      expect(only(set.validateEnvelope(e))).to.include({ keyword: 'type', path: '/body' });
    });

    it('never includes the offending value in an issue', () => {
      const e = env('suspect.handover');
      at(e, 'body', 'persons', 0)['nationality'] = 'TESTPERSON-NATIONALITY';
      const issues = set.validateEnvelope(e);
      expect(only(issues)).to.include({
        keyword: 'maxLength',
        path: '/body/persons/0/nationality',
      });
      expect(JSON.stringify(issues)).to.not.include('TESTPERSON');
    });
  });

  describe('bodies', () => {
    const requiredBodyMembers: [MessageType, (string | number)[], string][] = [
      ['evidence.request', [], 'legalBasis'],
      ['evidence.request', [], 'offence'],
      ['evidence.request', [], 'items'],
      ['evidence.request', ['offence'], 'category'],
      ['evidence.request', ['offence'], 'summary'],
      ['evidence.request', ['items', 0], 'kind'],
      ['evidence.request', ['items', 0], 'identifiers'],
      ['evidence.request', ['items', 0, 'identifiers', 0], 'type'],
      ['evidence.request', ['items', 0, 'identifiers', 0], 'value'],
      ['evidence.transfer', [], 'items'],
      ['evidence.transfer', ['items', 0], 'exhibitNo'],
      ['evidence.transfer', ['items', 0], 'description'],
      ['evidence.transfer', ['items', 0], 'sha256'],
      ['evidence.transfer', ['items', 0], 'size'],
      ['evidence.transfer', ['items', 0], 'custody'],
      ['evidence.transfer', ['items', 0, 'custody', 0], 'at'],
      ['evidence.transfer', ['items', 0, 'custody', 0], 'action'],
      ['evidence.transfer', ['items', 0, 'custody', 0], 'by'],
      ['funds.freeze', [], 'legalBasis'],
      ['funds.freeze', [], 'reason'],
      ['funds.freeze', [], 'executeBy'],
      ['funds.freeze', [], 'accounts'],
      ['funds.freeze', ['accounts', 0], 'institution'],
      ['funds.freeze', ['accounts', 0], 'accountId'],
      ['suspect.handover', [], 'handover'],
      ['suspect.handover', [], 'persons'],
      ['suspect.handover', [], 'escorts'],
      ['suspect.handover', ['handover'], 'place'],
      ['suspect.handover', ['handover'], 'at'],
      ['suspect.handover', ['handover'], 'handingAgency'],
      ['suspect.handover', ['handover'], 'receivingAgency'],
      ['suspect.handover', ['persons', 0], 'surname'],
      ['suspect.handover', ['persons', 0], 'givenNames'],
      ['suspect.handover', ['persons', 0], 'dateOfBirth'],
      ['suspect.handover', ['persons', 0], 'nationality'],
      ['suspect.handover', ['persons', 0], 'documents'],
      ['suspect.handover', ['persons', 0, 'documents', 0], 'type'],
      ['suspect.handover', ['persons', 0, 'documents', 0], 'number'],
      ['suspect.handover', ['escorts', 0], 'name'],
      ['suspect.handover', ['escorts', 0], 'agency'],
      ['status.update', [], 'status'],
    ];
    for (const [type, where, member] of requiredBodyMembers) {
      const path = ['', 'body', ...where, member].join('/');
      it(`${type}: refuses a missing ${path}`, () => {
        const e = env(type);
        delete at(e, 'body', ...where)[member];
        expect(only(set.validateEnvelope(e))).to.include({ keyword: 'required', path });
      });
    }

    for (const type of MESSAGE_TYPES) {
      it(`${type}: refuses an unknown body member`, () => {
        const e = env(type);
        at(e, 'body')['extra'] = 'x';
        expect(only(set.validateEnvelope(e))).to.include({
          keyword: 'additionalProperties',
          path: '/body/extra',
        });
      });
    }

    it('refuses unknown members in nested body objects', () => {
      const e = env('evidence.transfer');
      at(e, 'body', 'items', 0, 'custody', 1)['extra'] = true;
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'additionalProperties',
        path: '/body/items/0/custody/1/extra',
      });
    });

    it('validates the body by the envelope type (a request body under funds.freeze fails)', () => {
      const e = env('funds.freeze');
      e['body'] = at(env('evidence.request'), 'body');
      expect(only(set.validateEnvelope(e)).path).to.match(/^\/body/);
    });

    it('refuses wrong enums in bodies', () => {
      const a = env('evidence.request');
      at(a, 'body', 'items', 0)['kind'] = 'dna';
      expect(only(set.validateEnvelope(a))).to.include({
        keyword: 'enum',
        path: '/body/items/0/kind',
      });
      const b = env('evidence.transfer');
      at(b, 'body', 'items', 0, 'custody', 0)['action'] = 'lost';
      expect(only(set.validateEnvelope(b))).to.include({
        keyword: 'enum',
        path: '/body/items/0/custody/0/action',
      });
      const c = env('status.update');
      at(c, 'body')['status'] = 'done';
      expect(only(set.validateEnvelope(c))).to.include({ keyword: 'enum', path: '/body/status' });
    });

    for (const status of ['rejected', 'needs-info']) {
      it(`status.update: requires reason when status is ${status}`, () => {
        const e = env('status.update');
        at(e, 'body')['status'] = status;
        delete at(e, 'body')['reason'];
        expect(only(set.validateEnvelope(e))).to.include({
          keyword: 'required',
          path: '/body/reason',
        });
      });
    }
    it('status.update: reason optional for other statuses; decidedBy checked', () => {
      const e = env('status.update');
      at(e, 'body')['status'] = 'accepted';
      delete at(e, 'body')['reason'];
      expect(set.validateEnvelope(e)).to.equal(null);
      at(e, 'body')['decidedBy'] = { subject: `sha256:${'ab'.repeat(32)}`, name: 'TESTOFFICER' };
      expect(set.validateEnvelope(e)).to.equal(null);
      at(e, 'body')['decidedBy'] = { subject: `sha256:${'AB'.repeat(32)}`, name: 'TESTOFFICER' };
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'pattern',
        path: '/body/decidedBy/subject',
      });
    });

    it('evidence.transfer: refuses bad sha256 and negative or fractional size', () => {
      const e = env('evidence.transfer');
      at(e, 'body', 'items', 0)['sha256'] = 'A'.repeat(64);
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'pattern',
        path: '/body/items/0/sha256',
      });
      const f = env('evidence.transfer');
      at(f, 'body', 'items', 0)['size'] = -1;
      expect(only(set.validateEnvelope(f))).to.include({
        keyword: 'minimum',
        path: '/body/items/0/size',
      });
      at(f, 'body', 'items', 0)['size'] = 1.5;
      expect(only(set.validateEnvelope(f))).to.include({
        keyword: 'type',
        path: '/body/items/0/size',
      });
    });

    it('suspect.handover: agency ids, nationality and dateOfBirth are checked', () => {
      const a = env('suspect.handover');
      at(a, 'body', 'handover')['receivingAgency'] = 'Lang Son';
      expect(only(set.validateEnvelope(a))).to.include({
        keyword: 'pattern',
        path: '/body/handover/receivingAgency',
      });
      const b = env('suspect.handover');
      at(b, 'body', 'persons', 0)['nationality'] = 'vn';
      expect(only(set.validateEnvelope(b))).to.include({
        keyword: 'pattern',
        path: '/body/persons/0/nationality',
      });
      const c = env('suspect.handover');
      at(c, 'body', 'persons', 0)['dateOfBirth'] = '1990-02-30';
      expect(only(set.validateEnvelope(c))).to.include({
        keyword: 'format',
        path: '/body/persons/0/dateOfBirth',
      });
    });

    it('refuses an overlong string', () => {
      const e = env('evidence.request');
      at(e, 'body', 'offence')['summary'] = 'x'.repeat(4001);
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'maxLength',
        path: '/body/offence/summary',
      });
    });

    it('refuses oversized and empty arrays', () => {
      const e = env('evidence.request');
      const item = at(e, 'body', 'items', 0);
      at(e, 'body')['items'] = Array.from({ length: 101 }, () => clone(item));
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'maxItems',
        path: '/body/items',
      });
      at(e, 'body')['items'] = [];
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'minItems',
        path: '/body/items',
      });
      const h = env('suspect.handover');
      const esc = at(h, 'body', 'escorts', 0);
      at(h, 'body')['escorts'] = Array.from({ length: 51 }, () => clone(esc));
      expect(only(set.validateEnvelope(h))).to.include({
        keyword: 'maxItems',
        path: '/body/escorts',
      });
    });

    it('funds.freeze: amounts are decimal strings with an ISO 4217 currency', () => {
      const e = env('funds.freeze');
      at(e, 'body')['amount'] = { value: '1000.50', currency: 'CNY' };
      expect(set.validateEnvelope(e)).to.equal(null);
      at(e, 'body')['amount'] = { value: 1000.5, currency: 'CNY' };
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'type',
        path: '/body/amount/value',
      });
      at(e, 'body')['amount'] = { value: '1000', currency: 'cny' };
      expect(only(set.validateEnvelope(e))).to.include({
        keyword: 'pattern',
        path: '/body/amount/currency',
      });
    });
  });

  describe('schema documents', () => {
    it('returns every schema file by name, as independent copies', () => {
      const docs = set.documents();
      const names = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'));
      expect(Object.keys(docs).sort()).to.deep.equal(names.sort());
      for (const t of MESSAGE_TYPES) expect(docs).to.have.property(`${t}.schema.json`);
      (docs['envelope.schema.json'] as Json)['title'] = 'changed';
      expect((set.documents()['envelope.schema.json'] as Json)['title']).to.not.equal('changed');
    });

    it('every string is bounded, every array bounded, every object closed', () => {
      // A lint over our own schemas: protocol §2.3 "strings are bounded; arrays are bounded".
      const ours = ['envelope', ...MESSAGE_TYPES].map((n) => `${n}.schema.json`);
      const problems: string[] = [];
      const walk = (node: unknown, where: string): void => {
        if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`));
        if (typeof node !== 'object' || node === null) return;
        const s = node as Json;
        const bounded = 'maxLength' in s || 'enum' in s || 'const' in s;
        if (s['type'] === 'string' && !bounded) problems.push(`${where}: string without maxLength`);
        if (s['type'] === 'array' && !('maxItems' in s)) problems.push(`${where}: unbounded array`);
        // The envelope's `body` is closed by the per-type schema it dispatches to.
        const dispatched = where === 'envelope.schema.json/properties/body';
        if (s['type'] === 'object' && s['additionalProperties'] !== false && !dispatched) {
          problems.push(`${where}: open object`);
        }
        for (const [k, v] of Object.entries(s)) walk(v, `${where}/${k}`);
      };
      for (const f of ours) {
        const doc = set.documents()[f] as Json;
        expect(doc['$id']).to.equal(`https://casebridge.example/schemas/${f}`);
        expect(doc['additionalProperties'], f).to.equal(false);
        walk(doc, f);
      }
      expect(problems).to.deep.equal([]);
    });

    it('patterns on strings are anchored, so a pattern bounds the length', () => {
      const text = MESSAGE_TYPES.map((t) =>
        readFileSync(join(SCHEMA_DIR, `${t}.schema.json`), 'utf8'),
      ).join('');
      for (const m of text.matchAll(/"pattern": "([^"]*)"/g)) {
        expect(m[1], m[1]).to.match(/^\^.*\$$/);
      }
    });
  });

  describe('start-up failures', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'casebridge-schema-'));
      for (const f of readdirSync(SCHEMA_DIR))
        writeFileSync(join(dir, f), readFileSync(join(SCHEMA_DIR, f)));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('throws when a schema does not compile in strict mode', () => {
      const p = join(dir, 'status.update.schema.json');
      const doc = JSON.parse(readFileSync(p, 'utf8')) as Json;
      (doc['properties'] as Json)['status'] = { type: 'string', maxLenght: 3 };
      writeFileSync(p, JSON.stringify(doc));
      expect(() => createSchemaSet(dir)).to.throw();
    });
    it('throws when a schema has duplicate member names', () => {
      const p = join(dir, 'status.update.schema.json');
      writeFileSync(p, readFileSync(p, 'utf8').replace('"title":', '"type": "object", "title":'));
      expect(() => createSchemaSet(dir)).to.throw();
    });
    it('throws when there is no envelope schema', () => {
      rmSync(join(dir, 'envelope.schema.json'));
      expect(() => createSchemaSet(dir)).to.throw();
    });
  });
});
