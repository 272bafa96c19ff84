import { expect } from 'chai';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { MESSAGE_TYPES } from '../../src/envelope/types.js';
import { STATUS_BY_CODE, type ErrorCode } from '../../src/errors.js';
import { buildOpenApi } from '../../src/http/openapi.js';
import { createSchemaSet } from '../../src/schema/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';

// dist/test/http/*.js → package root
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

type Json = Record<string, unknown>;

/** The endpoints of protocol §3, §5.3, §5.4, §6.4, §8, §9. */
const ENDPOINTS: [string, string][] = [
  ['post', '/v1/messages'],
  ['post', '/v1/messages/batch'],
  ['get', '/v1/inbox'],
  ['get', '/v1/messages'],
  ['get', '/v1/messages/{id}'],
  ['get', '/v1/messages/{id}/thread'],
  ['get', '/v1/messages/{id}/proof'],
  ['post', '/v1/messages/{id}/claim'],
  ['post', '/v1/messages/{id}/release'],
  ['post', '/v1/messages/{id}/decision'],
  ['get', '/v1/events'],
  ['get', '/v1/audit/checkpoint'],
  ['get', '/v1/audit/key'],
  ['get', '/v1/audit/entries'],
  ['get', '/v1/audit/proof/inclusion'],
  ['get', '/v1/audit/proof/consistency'],
  ['get', '/v1/audit/export'],
  ['options', '/v1/files'],
  ['post', '/v1/files'],
  ['head', '/v1/files/{uploadId}'],
  ['patch', '/v1/files/{uploadId}'],
  ['delete', '/v1/files/{uploadId}'],
  ['get', '/v1/messages/{id}/files/{sha256}'],
  ['head', '/v1/messages/{id}/files/{sha256}'],
  ['get', '/v1/messages/{id}/case.jsonld'],
  ['get', '/v1/contexts/case-uco-1.jsonld'],
  ['get', '/v1/openapi.json'],
];

/** Every `$ref` string in `value`, with its location. */
function refs(value: unknown, at = '#'): [string, string][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => refs(v, `${at}/${i}`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]): [string, string][] =>
    k === '$ref' && typeof v === 'string' ? [[at, v]] : refs(v, `${at}/${k}`),
  );
}

/** Resolves a local JSON Pointer reference (RFC 6901) inside `doc`. */
function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, token)) return undefined;
    cur = (cur as Json)[token];
  }
  return cur;
}

function operation(doc: Json, method: string, path: string): Json {
  return ((doc['paths'] as Json)[path] as Json)[method] as Json;
}

describe('http/openapi', () => {
  let schemas: Record<string, object>;
  let doc: Json;
  before(() => {
    schemas = createSchemaSet(join(ROOT, 'schemas')).documents();
    doc = buildOpenApi(schemas) as Json;
  });

  it('is OpenAPI 3.1.0 with the JSON Schema 2020-12 dialect', () => {
    expect(doc['openapi']).to.equal('3.1.0');
    expect(doc['jsonSchemaDialect']).to.equal('https://json-schema.org/draft/2020-12/schema');
    expect(doc['servers']).to.deep.equal([{ url: 'https://127.0.0.1:8443' }]);
    const other = buildOpenApi(schemas, { serverUrl: 'https://gw.example:9443' }) as Json;
    expect(other['servers']).to.deep.equal([{ url: 'https://gw.example:9443' }]);
  });

  it('has no duplicate value in any enum, in the schemas or the document', () => {
    const enums = (value: unknown, at: string): [string, unknown[]][] => {
      if (Array.isArray(value)) return value.flatMap((v, i) => enums(v, `${at}/${i}`));
      if (typeof value !== 'object' || value === null) return [];
      return Object.entries(value).flatMap(([k, v]): [string, unknown[]][] => [
        ...(k === 'enum' && Array.isArray(v) ? [[`${at}/enum`, v] as [string, unknown[]]] : []),
        ...enums(v, `${at}/${k}`),
      ]);
    };
    const all = [
      ...Object.entries(schemas).flatMap(([file, d]) => enums(d, file)),
      ...enums(doc, 'openapi'),
    ];
    expect(all.length).to.be.greaterThan(20);
    for (const [where, values] of all) {
      const keys = values.map((v) => JSON.stringify(v));
      expect(new Set(keys).size, where).to.equal(keys.length);
    }
  });

  it('has every endpoint, each with a unique operationId', () => {
    const paths = doc['paths'] as Json;
    const listed = Object.entries(paths).flatMap(([p, item]) =>
      Object.keys(item as Json).map((m) => `${m} ${p}`),
    );
    expect(listed).to.have.members(ENDPOINTS.map(([m, p]) => `${m} ${p}`));
    const ids = ENDPOINTS.map(([m, p]) => operation(doc, m, p)['operationId']);
    for (const id of ids)
      expect(id)
        .to.be.a('string')
        .and.match(/^[a-z][A-Za-z]+$/);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it('requires mutual TLS on every operation', () => {
    const components = doc['components'] as Json;
    expect((components['securitySchemes'] as Json)['mtls']).to.include({ type: 'mutualTLS' });
    for (const [m, p] of ENDPOINTS) {
      expect(operation(doc, m, p)['security'], `${m} ${p}`).to.deep.equal([{ mtls: [] }]);
    }
  });

  it('resolves every $ref inside the document', () => {
    const all = refs(doc);
    expect(all.length).to.be.greaterThan(50);
    for (const [at, ref] of all) {
      expect(ref, at).to.match(/^#\//);
      expect(resolve(doc, ref), `${at} → ${ref}`).to.not.equal(undefined);
    }
  });

  it('keeps no $id or reference to a schema $id', () => {
    const ids = Object.values(schemas).map((s) => (s as { $id: string }).$id);
    expect(ids).to.have.length(Object.keys(schemas).length);
    const text = JSON.stringify(doc);
    expect(text).to.not.match(/"\$id"/);
    for (const [, ref] of refs(doc)) for (const id of ids) expect(ref).to.not.include(id);
    // The body schemas reference the envelope's $defs: those now point into the Envelope component.
    const transfer = JSON.stringify(
      (doc['components'] as { schemas: Json }).schemas['EvidenceTransferBody'],
    );
    expect(transfer).to.include('"$ref":"#/components/schemas/Envelope/$defs/dateTime"');
  });

  it('puts every schema document in components.schemas', () => {
    const components = (doc['components'] as { schemas: Json }).schemas;
    expect(components).to.include.keys(
      'Envelope',
      'EvidenceRequestBody',
      'EvidenceTransferBody',
      'FundsFreezeBody',
      'SuspectHandoverBody',
      'StatusUpdateBody',
    );
    if ('registry.schema.json' in schemas) expect(components).to.include.keys('Registry');
  });

  it('derives the Problem code enum from STATUS_BY_CODE', () => {
    const problem = (doc['components'] as { schemas: Json }).schemas['Problem'] as {
      required: string[];
      properties: { code: { enum: string[] }; errors: { items: { $ref: string } } };
    };
    expect(problem.properties.code.enum).to.deep.equal(Object.keys(STATUS_BY_CODE));
    expect(problem.required).to.have.members(['type', 'title', 'status', 'code', 'detail']);
    const issue = resolve(doc, problem.properties.errors.items.$ref) as { required: string[] };
    expect(issue.required).to.have.members(['path', 'keyword', 'message']);
  });

  it('documents each operation’s error codes as problem+json under their status', () => {
    for (const [m, p] of ENDPOINTS) {
      const op = operation(doc, m, p);
      const codes = op['x-casebridge-codes'] as ErrorCode[];
      expect(codes, `${m} ${p}`).to.include.members([
        'CLIENT_CERT_REQUIRED',
        'CLIENT_CERT_UNTRUSTED',
      ]);
      const responses = op['responses'] as Json;
      for (const code of codes) {
        expect(STATUS_BY_CODE).to.have.property(code);
        const res = responses[String(STATUS_BY_CODE[code])] as {
          description: string;
          content: Json;
        };
        expect(res, `${m} ${p} ${code}`).to.be.an('object');
        expect(res.description).to.include(code);
        const schema = (res.content['application/problem+json'] as { schema: Json }).schema;
        expect(JSON.stringify(schema))
          .to.include('#/components/schemas/Problem')
          .and.include(`"${code}"`);
      }
    }
    expect(operation(doc, 'post', '/v1/messages')['x-casebridge-codes']).to.include.members([
      'TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'MALFORMED',
      'BAD_HEADER',
      'CERT_INVALID',
      'SIGNATURE_INVALID',
      'SCHEMA_INVALID',
      'SENDER_MISMATCH',
      'FORBIDDEN_ROLE',
      'NOT_PERMITTED',
      'STALE',
      'UNKNOWN_REFERENCE',
      'ID_CONFLICT',
    ]);
    expect(
      operation(doc, 'post', '/v1/messages/{id}/claim')['x-casebridge-codes'],
    ).to.include.members([
      'ALREADY_CLAIMED',
      'NOT_DELIVERED',
      'ALREADY_DECIDED',
      'FORBIDDEN_ROLE',
      'NOT_FOUND',
    ]);
  });

  it('describes the submission as a JWS over an Envelope', () => {
    const op = operation(doc, 'post', '/v1/messages') as {
      requestBody: { content: Json };
      responses: Json;
    };
    const media = op.requestBody.content['application/jose'] as { schema: Json };
    expect(media.schema['x-jws-payload']).to.deep.equal({ $ref: '#/components/schemas/Envelope' });
    expect(op.responses).to.include.keys('200', '202');
    expect((op.responses['202'] as { headers: Json }).headers).to.have.property('Location');
  });

  it('describes the evidence-file operations: tus upload, download, export', () => {
    for (const [m, p] of ENDPOINTS.filter(([, p]) => p.startsWith('/v1/files'))) {
      const op = operation(doc, m, p) as { responses: Json; tags: string[] };
      expect(op['x-casebridge-roles' as keyof typeof op], `${m} ${p}`).to.deep.equal([
        'system',
        'officer',
      ]);
      expect(op.tags).to.deep.equal(['files']);
      if (m === 'options') continue;
      // tus 1.0 fixes 412 for the version; the gateway's problem says INVALID_PARAMETER.
      const wrong = op.responses['412'] as { headers: Json; content: Json };
      expect(wrong.headers, `${m} ${p}`).to.have.keys('Tus-Resumable', 'Tus-Version');
      expect(JSON.stringify(wrong.content['application/problem+json'])).to.include(
        '"INVALID_PARAMETER"',
      );
    }
    const create = operation(doc, 'post', '/v1/files') as { responses: Json; parameters: Json[] };
    expect(create.responses).to.include.keys('200', '201', '400', '412', '413', '422', '507');
    expect((create.responses['201'] as { headers: Json }).headers).to.include.keys('Location');
    const names = create.parameters.map((x) => (resolve(doc, String(x['$ref'])) as Json)['name']);
    expect(names).to.have.members(['Tus-Resumable', 'Upload-Length', 'Upload-Metadata']);
    expect(
      operation(doc, 'patch', '/v1/files/{uploadId}')['x-casebridge-codes'],
    ).to.include.members([
      'OFFSET_MISMATCH',
      'TOO_LARGE',
      'DIGEST_MISMATCH',
      'CHECKSUM_MISMATCH',
      'UNAVAILABLE',
      'INSUFFICIENT_STORAGE',
    ]);
    const patch = operation(doc, 'patch', '/v1/files/{uploadId}') as {
      requestBody: { content: Json };
      responses: Json;
    };
    expect(patch.requestBody.content).to.have.keys('application/offset+octet-stream');
    expect((patch.responses['503'] as { headers: Json }).headers).to.have.keys('Retry-After');
    const download = operation(doc, 'get', '/v1/messages/{id}/files/{sha256}') as {
      responses: Json;
    };
    expect(download.responses).to.include.keys('200', '206', '400', '404', '416');
    expect((download.responses['416'] as { headers: Json }).headers).to.have.keys('Content-Range');
    const bundle = operation(doc, 'get', '/v1/messages/{id}/case.jsonld') as { responses: Json };
    expect((bundle.responses['200'] as { content: Json }).content).to.have.keys(
      'application/ld+json',
    );
  });

  describe('validating with the generated components', () => {
    let validate: (value: unknown) => boolean;
    let decision: (value: unknown) => boolean;
    before(() => {
      const ajv = new Ajv2020.default({ strict: false });
      addFormats.default(ajv);
      ajv.addSchema({ $id: 'urn:test:openapi', components: doc['components'] });
      validate = ajv.compile({ $ref: 'urn:test:openapi#/components/schemas/Envelope' });
      decision = ajv.compile({ $ref: 'urn:test:openapi#/components/schemas/DecisionRequest' });
    });

    for (const type of MESSAGE_TYPES) {
      it(`accepts the ${type} sample envelope`, () => {
        expect(
          validate(sampleEnvelope(type)),
          JSON.stringify((validate as { errors?: unknown }).errors),
        ).to.equal(true);
      });
    }

    it('applies the body schema through the rewritten references', () => {
      const env = structuredClone(sampleEnvelope('evidence.request')) as unknown as { body: Json };
      delete env.body['legalBasis'];
      expect(validate(env)).to.equal(false);
      const transfer = structuredClone(sampleEnvelope('evidence.transfer')) as unknown as {
        body: Json;
      };
      (transfer.body['items'] as Json[])[0]!['sha256'] = 'not-a-hash';
      expect(validate(transfer)).to.equal(false);
    });

    it('requires a reason for rejecting a message', () => {
      expect(decision({ status: 'accepted' })).to.equal(true);
      expect(decision({ status: 'rejected' })).to.equal(false);
      expect(decision({ status: 'rejected', reason: 'incomplete' })).to.equal(true);
      expect(decision({ status: 'claimed' })).to.equal(false);
    });
  });

  describe('reference rewriting', () => {
    const envelope = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'https://example.test/s/envelope.schema.json',
      type: 'object',
      properties: { body: { $ref: 'funds.freeze.schema.json' } },
      $defs: { d: { type: 'string' } },
    };

    it('maps relative and absolute $id references and leaves the input alone', () => {
      const body = {
        $id: 'https://example.test/s/funds.freeze.schema.json',
        properties: {
          a: { $ref: 'envelope.schema.json#/$defs/d' },
          b: { $ref: 'https://example.test/s/envelope.schema.json' },
          c: { $ref: '#/properties/a' },
          d: { const: { $ref: 'not-a-reference' } },
        },
      };
      const input = { 'envelope.schema.json': envelope, 'funds.freeze.schema.json': body };
      const before = JSON.stringify(input);
      const out = buildOpenApi(input) as { components: { schemas: Json } };
      expect(JSON.stringify(input)).to.equal(before);
      const freeze = out.components.schemas['FundsFreezeBody'] as { properties: Json };
      expect(freeze.properties).to.deep.equal({
        a: { $ref: '#/components/schemas/Envelope/$defs/d' },
        b: { $ref: '#/components/schemas/Envelope' },
        c: { $ref: '#/components/schemas/FundsFreezeBody/properties/a' },
        d: { const: { $ref: 'not-a-reference' } },
      });
      expect(
        (out.components.schemas['Envelope'] as { properties: Json }).properties['body'],
      ).to.deep.equal({
        $ref: '#/components/schemas/FundsFreezeBody',
      });
    });

    it('refuses references it cannot map', () => {
      const external = {
        ...envelope,
        properties: { x: { $ref: 'https://elsewhere.test/other.json' } },
      };
      expect(() => buildOpenApi({ 'envelope.schema.json': external })).to.throw(/unknown document/);
      const anchor = { ...envelope, properties: { x: { $ref: '#plain' } } };
      expect(() => buildOpenApi({ 'envelope.schema.json': anchor })).to.throw(/plain-name/);
      const nested = { ...envelope, properties: { x: { $id: 'https://example.test/x' } } };
      expect(() => buildOpenApi({ 'envelope.schema.json': nested })).to.throw(/nested \$id/);
    });
  });
});
