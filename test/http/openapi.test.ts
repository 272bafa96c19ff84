import { expect } from 'chai';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { MESSAGE_TYPES } from '../../src/envelope/types.js';
import { STATUS_BY_CODE, type ErrorCode } from '../../src/errors.js';
import { buildOpenApi, METHODS } from '../../src/http/openapi.js';
import { createSchemaSet } from '../../src/schema/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createUpload, sha256Hex, TUS, tusMetadata, uploadFile } from '../helpers/files.js';
import {
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  tlsAs,
  type Identity,
  type Response,
  type TestGateway,
} from '../helpers/gateway.js';

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

// ---------------------------------------------------------------------------
// The document against the gateway that serves it

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const C = 'VN-CB';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request over a fresh connection with `who`'s client certificate (or none). With
 * `stream`, the answer ends at its headers (an endless event stream).
 */
async function send(
  gw: { url: string },
  who: Identity | undefined,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
  stream = false,
): Promise<Answer> {
  const tls = await tlsAs(who);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, gw.url),
      {
        method,
        ...tls,
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
        },
      },
      (res) => {
        const answer = { status: res.statusCode ?? 0, headers: res.headers };
        if (stream) {
          res.destroy();
          resolve({ ...answer, body: Buffer.alloc(0) });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ ...answer, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

interface Layer {
  route?: { path: string | RegExp | (string | RegExp)[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** The routes an Express app's router and its sub-routers register. */
function routesOf(stack: Layer[]): { path: string | RegExp; methods: string[] }[] {
  return stack.flatMap((layer) => {
    const route = layer.route;
    if (route !== undefined) {
      const paths = Array.isArray(route.path) ? route.path : [route.path];
      return paths.map((path) => ({ path, methods: Object.keys(route.methods) }));
    }
    return layer.handle?.stack === undefined ? [] : routesOf(layer.handle.stack);
  });
}

/** Media types whose bodies are one JSON document. */
const JSON_TYPES = ['application/json', 'application/problem+json', 'application/ld+json'];

/** A documented path with a sample value for each parameter. */
function samplePath(path: string): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) =>
    name === 'uploadId' ? '0'.repeat(32) : name === 'sha256' ? '0'.repeat(64) : randomUUID(),
  );
}

describe('http/openapi against a live gateway', function () {
  let t: TestGateway;
  let doc: Json;
  let ajv: InstanceType<typeof Ajv2020.default>;
  let aSys: Identity;
  let aOfficer: Identity;
  let aAuditor: Identity;
  let bSys: Identity;
  let bOfficer: Identity;
  let cSys: Identity;
  /** An evidence.request from A to B, delivered. */
  let requestId: string;
  /** B's transfer answering it, binding `data`. */
  let transferId: string;
  const data = randomBytes(3000);
  const MAX = 1024 * 1024;

  before(async function () {
    this.timeout(60_000);
    t = await startTestGateway({
      CASEBRIDGE_FILE_MAX_BYTES: String(MAX),
      CASEBRIDGE_FILE_QUOTA_BYTES: String(MAX / 2),
    });
    [aSys, aOfficer, aAuditor, bSys, bOfficer, cSys] = await Promise.all([
      identity(A, 'system'),
      identity(A, 'officer'),
      identity(A, 'auditor'),
      identity(B, 'system'),
      identity(B, 'officer'),
      identity(C, 'system'),
    ]);
    const served = await send(t.gw, aAuditor, 'GET', '/v1/openapi.json');
    expect(served.status).to.equal(200);
    doc = JSON.parse(served.body.toString('utf8')) as Json;
    ajv = new Ajv2020.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'urn:test:openapi', components: doc['components'] });

    const req = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(req, aSys))).status).to.equal(202);
    requestId = req.id;
    expect((await uploadFile(t.gw, bSys, data)).status).to.equal(204);
    const transfer = sampleEnvelope('evidence.transfer', { from: B, to: A, inReplyTo: requestId });
    const items = (transfer.body as { items: Record<string, unknown>[] }).items;
    (transfer.body as { items: unknown[] }).items = [
      { ...items[0], sha256: sha256Hex(data), size: data.length },
    ];
    const accepted = await submit(t.gw, bSys, signAs(transfer, bSys));
    expect(accepted.status, accepted.text).to.equal(202);
    transferId = transfer.id;
    await eventually(
      async () => (await t.gw.store.getMessage(requestId))?.status === 'delivered',
      10_000,
      'delivery',
    );
  });
  after(async () => t?.stop());

  const operations = (): { method: string; path: string; op: Json }[] =>
    Object.entries(doc['paths'] as Json).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, op]) => ({ method, path, op: op as Json })),
    );
  const byId = (operationId: string) => {
    const found = operations().find((o) => o.op['operationId'] === operationId);
    if (found === undefined) throw new Error(`no operation ${operationId}`);
    return found;
  };
  /** A schema of the document, its `#/components` references pointed at the added copy. */
  const compile = (schema: unknown) =>
    ajv.compile(
      JSON.parse(
        JSON.stringify(schema).replaceAll('"#/components/', '"urn:test:openapi#/components/'),
      ) as object,
    );

  /** Checks one real answer against what the document says operation `operationId` answers. */
  function conforms(operationId: string, a: Answer): void {
    const { method, path, op } = byId(operationId);
    const where = `${method} ${path} → ${a.status}`;
    const responses = op['responses'] as Record<
      string,
      { headers?: Record<string, { required?: boolean; schema: Json }>; content?: Json }
    >;
    const res = responses[String(a.status)];
    expect(res, `${where} is not documented`).to.be.an('object');
    for (const [name, h] of Object.entries(res!.headers ?? {})) {
      const value = a.headers[name.toLowerCase()];
      if (value === undefined) {
        expect(h.required, `${where}: no ${name}`).to.not.equal(true);
        continue;
      }
      const v = compile({
        ...h.schema,
        ...(h.schema['type'] === 'integer' ? { type: 'string', pattern: '^\\d+$' } : {}),
      });
      expect(v(value), `${where}: ${name}: ${String(value)}`).to.equal(true);
    }
    const type = String(a.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    if (a.status >= 400) expect(type, where).to.equal('application/problem+json');
    if (method === 'head' || a.body.length === 0) return;
    const content = (res!.content ?? {}) as Record<string, { schema?: Json }>;
    expect(Object.keys(content), `${where}: ${type}`).to.include(type);
    const schema = content[type]!.schema;
    if (schema === undefined) return;
    const text = a.body.toString('utf8');
    if (JSON_TYPES.includes(type)) {
      const v = compile(schema);
      expect(v(JSON.parse(text)), `${where}: ${JSON.stringify(v.errors)}`).to.equal(true);
    } else if (type === 'application/x-ndjson' && schema['x-ndjson-line'] !== undefined) {
      const v = compile(schema['x-ndjson-line']);
      const lines = text.split('\n').filter((l) => l !== '');
      expect(lines.length, where).to.be.greaterThan(0);
      for (const line of lines) {
        expect(v(JSON.parse(line)), `${where}: ${JSON.stringify(v.errors)}`).to.equal(true);
      }
    }
  }

  it('serves the document buildOpenApi makes, with its own address', function () {
    const schemas = createSchemaSet(join(ROOT, 'schemas')).documents();
    expect(doc).to.deep.equal(buildOpenApi(schemas, { serverUrl: t.gw.url }));
  });

  it('documents every route the routers register under /v1/, and nothing they do not serve', function () {
    const app = t.gw.https.listeners('request')[0] as unknown as { router: { stack: Layer[] } };
    const routes = routesOf(app.router.stack).filter((r) =>
      typeof r.path === 'string' ? r.path.startsWith('/v1/') : r.path.test('/v1/files'),
    );
    expect(routes.length).to.be.greaterThan(20);
    const documented = new Set(operations().map((o) => `${o.method} ${o.path}`));
    const served = new Set<string>();
    for (const r of routes) {
      if (typeof r.path !== 'string') continue;
      const path = r.path.replace(/:(\w+)/g, '{$1}');
      for (const m of r.methods) {
        expect(documented, `${m} ${path}`).to.include(`${m} ${path}`);
        served.add(`${m} ${path}`);
      }
    }
    const patterns = routes.filter((r) => typeof r.path !== 'string');
    for (const { method, path } of operations()) {
      const byPattern = patterns.some((r) => (r.path as RegExp).test(samplePath(path)));
      // Express answers HEAD with a GET route.
      const ok =
        served.has(`${method} ${path}`) ||
        (method === 'head' && served.has(`get ${path}`)) ||
        byPattern;
      expect(ok, `${method} ${path} is documented but not routed`).to.equal(true);
    }
    // The tus mount takes every method: the document names the ones it serves.
    for (const r of patterns) {
      expect(r.methods).to.deep.equal(['_all']);
      const paths = operations().filter((o) => (r.path as RegExp).test(samplePath(o.path)));
      expect(paths.map((o) => `${o.method} ${o.path}`)).to.have.members([
        'options /v1/files',
        'post /v1/files',
        'head /v1/files/{uploadId}',
        'patch /v1/files/{uploadId}',
        'delete /v1/files/{uploadId}',
      ]);
    }
  });

  it('answers 404 NOT_FOUND for the methods the upload endpoint does not document, and keeps serving', async function () {
    const kept = await createUpload(t.gw, bSys, data.length, { sha256: sha256Hex(data) });
    expect(kept.status).to.equal(200);
    const item = String(kept.headers['location']);
    const paths = doc['paths'] as Record<string, Json>;
    for (const [path, sample] of [
      ['/v1/files', '/v1/files'],
      ['/v1/files/{uploadId}', item],
    ] as const) {
      // OPTIONS (tus's discovery) is answered on any path of the mount alike.
      for (const m of METHODS.filter((x) => x !== 'options' && !(x in paths[path]!))) {
        // GET of a completed upload once ended the process (@tus/server streamed a missing file).
        const a = await send(t.gw, bSys, m.toUpperCase(), sample, TUS);
        expect(a.status, `${m} ${path}`).to.equal(404);
        if (m !== 'head') expect(JSON.parse(a.body.toString()).code).to.equal('NOT_FOUND');
      }
      const put = await send(t.gw, bSys, 'PUT', sample, TUS, 'x');
      expect(put.status, `put ${path}`).to.equal(404);
    }
    expect((await send(t.gw, bSys, 'HEAD', item, TUS)).status).to.equal(200);
    const options = await send(t.gw, bSys, 'OPTIONS', item);
    expect(options.status).to.equal(204);
    conforms('getUploadOptions', options);
  });

  /** A real request per case; each operation of the document has at least one. */
  const cases: { op: string; what: string; status: number; run: () => Promise<Answer> }[] = [];
  const probe = (op: string, what: string, status: number, run: () => Promise<Answer>) =>
    cases.push({ op, what, status, run });
  const tusPatch = (offset: number, extra: Record<string, string> = {}) => ({
    ...TUS,
    'upload-offset': String(offset),
    'content-type': 'application/offset+octet-stream',
    ...extra,
  });
  const newUpload = async (who: Identity, bytes: Buffer, sha256 = sha256Hex(bytes)) => {
    const created = await createUpload(t.gw, who, bytes.length, { sha256 });
    expect(created.status, created.text).to.equal(201);
    return String(created.headers['location']);
  };
  const fresh = () => sampleEnvelope('evidence.request');
  const file = (sha = sha256Hex(data)) => `/v1/messages/${transferId}/files/${sha}`;

  probe('submitMessage', 'a signed request', 202, () =>
    send(
      t.gw,
      aSys,
      'POST',
      '/v1/messages',
      { 'content-type': 'application/jose' },
      signAs(fresh(), aSys),
    ),
  );
  probe('submitMessage', 'a replay', 200, async () => {
    const jws = signAs(fresh(), aSys);
    await submit(t.gw, aSys, jws);
    return send(t.gw, aSys, 'POST', '/v1/messages', { 'content-type': 'application/jose' }, jws);
  });
  probe('submitMessage', 'no client certificate', 401, () =>
    send(t.gw, undefined, 'POST', '/v1/messages', { 'content-type': 'application/jose' }, 'x'),
  );
  probe('submitBatch', 'two lines', 200, () =>
    send(
      t.gw,
      aSys,
      'POST',
      '/v1/messages/batch',
      { 'content-type': 'application/x-ndjson' },
      `${signAs(fresh(), aSys)}\n${signAs(fresh(), aSys)}\n`,
    ),
  );
  probe('listInbox', "B's inbox", 200, () => send(t.gw, bSys, 'GET', '/v1/inbox'));
  probe('listMessages', "A's sent messages", 200, () =>
    send(t.gw, aSys, 'GET', '/v1/messages?direction=sent'),
  );
  probe('getMessage', 'the transfer', 200, () =>
    send(t.gw, aSys, 'GET', `/v1/messages/${transferId}`),
  );
  probe('getMessage', 'to a third agency', 404, () =>
    send(t.gw, cSys, 'GET', `/v1/messages/${transferId}`),
  );
  probe('getThread', 'request and transfer', 200, () =>
    send(t.gw, aSys, 'GET', `/v1/messages/${transferId}/thread`),
  );
  probe('getMessageProof', 'of the request', 200, async () => {
    const size = await t.gw.store.treeSize();
    await eventually(async () => ((await t.gw.store.latestCheckpoint())?.size ?? 0) >= size);
    return send(t.gw, aSys, 'GET', `/v1/messages/${requestId}/proof`);
  });
  probe('claimMessage', 'the request, by an officer of B', 200, () =>
    send(t.gw, bOfficer, 'POST', `/v1/messages/${requestId}/claim`),
  );
  probe('releaseMessage', 'the claim', 200, () =>
    send(t.gw, bOfficer, 'POST', `/v1/messages/${requestId}/release`),
  );
  probe('releaseMessage', 'no claim held', 409, () =>
    send(t.gw, bOfficer, 'POST', `/v1/messages/${requestId}/release`),
  );
  probe('decideMessage', 'in progress', 202, async () => {
    await send(t.gw, bOfficer, 'POST', `/v1/messages/${requestId}/claim`);
    return send(
      t.gw,
      bOfficer,
      'POST',
      `/v1/messages/${requestId}/decision`,
      { 'content-type': 'application/json' },
      JSON.stringify({ status: 'in-progress' }),
    );
  });
  probe('streamEvents', "B's queue", 200, () =>
    send(t.gw, bOfficer, 'GET', '/v1/events', {}, undefined, true),
  );
  probe('getCheckpoint', 'the latest', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/audit/checkpoint'),
  );
  probe('getLogKey', 'the key', 200, () => send(t.gw, aSys, 'GET', '/v1/audit/key'));
  probe('listAuditEntries', 'the first two', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/audit/entries?start=0&end=2'),
  );
  probe('listAuditEntries', 'by a system principal', 403, () =>
    send(t.gw, aSys, 'GET', '/v1/audit/entries'),
  );
  probe('getInclusionProof', 'of entry 0', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/audit/proof/inclusion?index=0'),
  );
  probe('getConsistencyProof', 'from size 1', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/audit/proof/consistency?from=1'),
  );
  probe('exportAudit', 'the first entries', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/audit/export?end=2'),
  );
  probe('getOpenApi', 'this document', 200, () => send(t.gw, aOfficer, 'GET', '/v1/openapi.json'));

  probe('getUploadOptions', 'the tus configuration', 204, () =>
    send(t.gw, aSys, 'OPTIONS', '/v1/files'),
  );
  probe('getUploadOptions', 'by an auditor', 403, () =>
    send(t.gw, aAuditor, 'OPTIONS', '/v1/files'),
  );
  probe('createUpload', 'a new file', 201, () =>
    createUpload(t.gw, aSys, 10, { sha256: sha256Hex(randomBytes(10)) }).then(asAnswer),
  );
  probe('createUpload', 'with its bytes (creation-with-upload)', 201, () => {
    const bytes = randomBytes(10);
    return send(
      t.gw,
      aOfficer,
      'POST',
      '/v1/files',
      {
        ...TUS,
        'upload-length': '10',
        'upload-metadata': tusMetadata({ sha256: sha256Hex(bytes) }),
        'content-type': 'application/offset+octet-stream',
      },
      bytes,
    );
  });
  probe('createUpload', 'a file the agency already keeps', 200, () =>
    createUpload(t.gw, bOfficer, data.length, { sha256: sha256Hex(data) }).then(asAnswer),
  );
  probe('createUpload', 'without Tus-Resumable', 412, () =>
    send(t.gw, aSys, 'POST', '/v1/files', {
      'upload-length': '10',
      'upload-metadata': tusMetadata({ sha256: 'a'.repeat(64) }),
    }),
  );
  probe('createUpload', 'with another tus version', 412, () =>
    send(t.gw, aSys, 'POST', '/v1/files', { 'tus-resumable': '0.2.2', 'upload-length': '10' }),
  );
  probe('createUpload', 'an uppercase sha256', 400, () =>
    createUpload(t.gw, aSys, 10, { sha256: 'A'.repeat(64) }).then(asAnswer),
  );
  probe('createUpload', 'over CASEBRIDGE_FILE_MAX_BYTES', 413, () =>
    createUpload(t.gw, aSys, MAX + 1, { sha256: 'a'.repeat(64) }).then(asAnswer),
  );
  probe('createUpload', "past the agency's quota", 507, () =>
    createUpload(t.gw, aSys, MAX, { sha256: 'b'.repeat(64) }).then(asAnswer),
  );
  probe('createUpload', 'by an auditor', 403, () =>
    createUpload(t.gw, aAuditor, 10, { sha256: 'c'.repeat(64) }).then(asAnswer),
  );
  probe('createUpload', 'from another site in a browser', 403, () =>
    send(t.gw, aOfficer, 'POST', '/v1/files', { ...TUS, origin: 'https://elsewhere.test' }),
  );
  probe('createUpload', 'a compressed body', 415, () =>
    send(
      t.gw,
      aSys,
      'POST',
      '/v1/files',
      { ...TUS, 'content-encoding': 'gzip', 'content-type': 'application/offset+octet-stream' },
      'x',
    ),
  );
  probe('getUploadOffset', 'a fresh upload', 200, async () =>
    send(t.gw, aSys, 'HEAD', await newUpload(aSys, randomBytes(10)), TUS),
  );
  probe('getUploadOffset', "another agency's upload", 404, async () =>
    send(t.gw, bSys, 'HEAD', await newUpload(aSys, randomBytes(10)), TUS),
  );
  probe('getUploadOffset', 'without Tus-Resumable', 412, async () =>
    send(t.gw, aSys, 'HEAD', await newUpload(aSys, randomBytes(10))),
  );
  probe('uploadChunk', 'the whole file', 204, async () => {
    const bytes = randomBytes(100);
    return send(t.gw, aSys, 'PATCH', await newUpload(aSys, bytes), tusPatch(0), bytes);
  });
  probe('uploadChunk', 'at the wrong offset', 409, async () => {
    const bytes = randomBytes(100);
    return send(t.gw, aSys, 'PATCH', await newUpload(aSys, bytes), tusPatch(5), bytes.subarray(5));
  });
  probe('uploadChunk', 'past the declared length', 413, async () => {
    const bytes = randomBytes(100);
    const loc = await newUpload(aSys, bytes);
    return send(t.gw, aSys, 'PATCH', loc, tusPatch(0), Buffer.concat([bytes, bytes]));
  });
  probe('uploadChunk', 'bytes of another hash', 422, async () => {
    const bytes = randomBytes(100);
    const loc = await newUpload(aSys, bytes, sha256Hex(bytes.subarray(1)));
    return send(t.gw, aSys, 'PATCH', loc, tusPatch(0), bytes);
  });
  probe('uploadChunk', 'failing its Upload-Checksum', 460, async () => {
    const bytes = randomBytes(100);
    const wrong = createHash('sha256').update(bytes.subarray(1)).digest('base64');
    const loc = await newUpload(aSys, bytes);
    return send(
      t.gw,
      aSys,
      'PATCH',
      loc,
      tusPatch(0, { 'upload-checksum': `sha256 ${wrong}` }),
      bytes,
    );
  });
  probe('uploadChunk', 'another Content-Type', 400, async () => {
    const bytes = randomBytes(100);
    const loc = await newUpload(aSys, bytes);
    return send(
      t.gw,
      aSys,
      'PATCH',
      loc,
      tusPatch(0, { 'content-type': 'application/octet-stream' }),
      bytes,
    );
  });
  probe('uploadChunk', 'without Tus-Resumable', 412, async () => {
    const bytes = randomBytes(100);
    const loc = await newUpload(aSys, bytes);
    const { 'tus-resumable': _, ...headers } = tusPatch(0);
    return send(t.gw, aSys, 'PATCH', loc, headers, bytes);
  });
  probe('uploadChunk', "another agency's upload", 404, async () => {
    const bytes = randomBytes(100);
    return send(t.gw, bSys, 'PATCH', await newUpload(aSys, bytes), tusPatch(0), bytes);
  });
  probe('terminateUpload', 'a fresh upload', 204, async () =>
    send(t.gw, aSys, 'DELETE', await newUpload(aSys, randomBytes(10)), TUS),
  );
  probe('terminateUpload', 'an upload already gone', 404, async () => {
    const loc = await newUpload(aSys, randomBytes(10));
    await send(t.gw, aSys, 'DELETE', loc, TUS);
    return send(t.gw, aSys, 'DELETE', loc, TUS);
  });
  probe('terminateUpload', 'without Tus-Resumable', 412, async () =>
    send(t.gw, aSys, 'DELETE', await newUpload(aSys, randomBytes(10))),
  );
  probe('downloadFile', 'by the recipient', 200, () => send(t.gw, aSys, 'GET', file()));
  probe('downloadFile', 'by the sender', 200, () => send(t.gw, bOfficer, 'GET', file()));
  probe('downloadFile', 'a range', 206, () =>
    send(t.gw, aSys, 'GET', file(), { range: 'bytes=10-' }),
  );
  probe('downloadFile', 'a range past the end', 416, () =>
    send(t.gw, aSys, 'GET', file(), { range: `bytes=${data.length}-` }),
  );
  probe('downloadFile', 'by a third agency', 404, () => send(t.gw, cSys, 'GET', file()));
  probe('downloadFile', 'a hash the message does not bind', 404, () =>
    send(t.gw, aSys, 'GET', file('f'.repeat(64))),
  );
  probe('downloadFile', 'an uppercase hash', 400, () =>
    send(t.gw, aSys, 'GET', file('F'.repeat(64))),
  );
  probe('downloadFile', 'by an auditor', 403, () => send(t.gw, aAuditor, 'GET', file()));
  probe('headFile', 'by the recipient', 200, () => send(t.gw, aSys, 'HEAD', file()));
  probe('headFile', 'a range', 206, () => send(t.gw, aSys, 'HEAD', file(), { range: 'bytes=-10' }));
  probe('headFile', 'a range past the end', 416, () =>
    send(t.gw, aSys, 'HEAD', file(), { range: 'bytes=-0' }),
  );
  probe('headFile', 'by a third agency', 404, () => send(t.gw, cSys, 'HEAD', file()));
  probe('exportCase', 'the transfer', 200, () =>
    send(t.gw, aSys, 'GET', `/v1/messages/${transferId}/case.jsonld`),
  );
  probe('exportCase', 'a request, which has none', 404, () =>
    send(t.gw, aSys, 'GET', `/v1/messages/${requestId}/case.jsonld`),
  );
  probe('exportCase', 'by a third agency', 404, () =>
    send(t.gw, cSys, 'GET', `/v1/messages/${transferId}/case.jsonld`),
  );
  probe('getCaseContext', 'by an auditor', 200, () =>
    send(t.gw, aAuditor, 'GET', '/v1/contexts/case-uco-1.jsonld'),
  );

  it('has a live case for every documented operation', function () {
    const ids = operations().map((o) => String(o.op['operationId']));
    expect([...new Set(cases.map((c) => c.op))]).to.have.members(ids);
  });

  for (const c of cases) {
    it(`${c.op}: ${c.what} → ${c.status}, as documented`, async function () {
      const a = await c.run();
      expect(a.status, a.body.toString('utf8').slice(0, 300)).to.equal(c.status);
      conforms(c.op, a);
    });
  }

  it('sends the download and tus headers it documents, with their values', async function () {
    const a = await send(t.gw, aSys, 'GET', file(), { range: 'bytes=10-19' });
    expect(a.status).to.equal(206);
    expect(a.headers['etag']).to.equal(`"${sha256Hex(data)}"`);
    expect(a.headers['content-range']).to.equal(`bytes 10-19/${data.length}`);
    expect(a.headers['repr-digest']).to.equal(
      `sha-256=:${createHash('sha256').update(data).digest('base64')}:`,
    );
    expect(a.body.equals(data.subarray(10, 20))).to.equal(true);
    const opts = await send(t.gw, aSys, 'OPTIONS', '/v1/files');
    expect(opts.headers['tus-max-size']).to.equal(String(MAX));
    const extensions = String(opts.headers['tus-extension']);
    const said = (
      byId('getUploadOptions').op['responses'] as {
        '204': { headers: { 'Tus-Extension': { description: string } } };
      }
    )['204'].headers['Tus-Extension'].description;
    expect(said).to.include(`\`${extensions}\``);
    const refused = await send(t.gw, aSys, 'PATCH', `/v1/files/${'0'.repeat(32)}`, {});
    expect(refused.status).to.equal(412);
    expect(refused.headers['tus-version']).to.equal('1.0.0');
    expect(JSON.parse(refused.body.toString())).to.include({
      status: 412,
      code: 'INVALID_PARAMETER',
    });
  });
});

function asAnswer(r: Response): Answer {
  return { status: r.status, headers: r.headers as IncomingHttpHeaders, body: Buffer.from(r.text) };
}
