import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import jsonld from 'jsonld';
import { SCHEMA_DIR } from '../../src/app.js';
import type { Envelope } from '../../src/envelope/types.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { CONTEXT_FILE, CONTEXT_PATH } from '../../src/files/case-export.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  auditEntriesOf,
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import {
  createUpload,
  filesOnDisk,
  patchUpload,
  raw,
  sha256Hex,
  uploadFile,
} from '../helpers/files.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const C = 'VN-CB';

interface Entry {
  index: number;
  event: string;
  messageId?: string;
  digest?: string;
  actor: { agency: string };
  detail?: Record<string, unknown>;
}

describe('evidence files bound to transfers, downloaded, exported (protocol §9.2–§9.5)', function () {
  let t: TestGateway;
  let clock = 0;
  let aSys: Identity;
  let bSys: Identity;
  let bOfficer: Identity;
  let cSys: Identity;
  let requestId: string;

  before(async function () {
    t = await startTestGateway({}, { now: () => new Date(Date.now() + clock) });
    [aSys, bSys, bOfficer, cSys] = await Promise.all([
      identity(A, 'system'),
      identity(B, 'system'),
      identity(B, 'officer'),
      identity(C, 'system'),
    ]);
    const req = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(req, aSys))).status).to.equal(202);
    requestId = req.id;
  });
  after(async () => t?.stop());

  const entries = () => auditEntriesOf<Entry>(t.gw.store);

  /** A transfer from B to A answering the request, naming `files`. */
  function transfer(
    files: { sha256: string; size: number }[],
    over: Partial<Envelope> = {},
  ): Envelope {
    const env = sampleEnvelope('evidence.transfer', {
      from: B,
      to: A,
      inReplyTo: requestId,
      ...over,
    });
    const template = (env.body as { items: Record<string, unknown>[] }).items[0]!;
    (env.body as { items: unknown[] }).items = files.map((f, k) => ({
      ...template,
      exhibitNo: `EX-TEST-${k}`,
      sha256: f.sha256,
      size: f.size,
    }));
    return env;
  }

  describe('binding at submission', function () {
    it('refuses an item naming no upload, another size, or another agency’s file: 422 UNKNOWN_FILE with its path', async function () {
      const mine = randomBytes(5000);
      const theirs = randomBytes(5000);
      expect((await uploadFile(t.gw, bSys, mine)).status).to.equal(204);
      expect((await uploadFile(t.gw, aSys, theirs)).status).to.equal(204);
      const env = transfer([
        { sha256: sha256Hex(mine), size: mine.length },
        { sha256: sha256Hex(randomBytes(10)), size: 10 },
        { sha256: sha256Hex(mine), size: mine.length + 1 },
        { sha256: sha256Hex(theirs), size: theirs.length },
      ]);
      const before = await t.gw.store.treeSize();
      const res = await submit(t.gw, bSys, signAs(env, bSys));
      expect(res.status).to.equal(422);
      const p = res.json<{ code: string; errors: { path: string }[] }>();
      expect(p.code).to.equal('UNKNOWN_FILE');
      expect(p.errors.map((e) => e.path)).to.deep.equal([
        '/body/items/1',
        '/body/items/2',
        '/body/items/3',
      ]);
      expect(await t.gw.store.getMessage(env.id)).to.equal(undefined);
      const after = (await entries()).slice(before);
      expect(after.map((e) => e.event)).to.deep.equal(['message.refused']);
    });

    it('checks inReplyTo first (UNKNOWN_REFERENCE before UNKNOWN_FILE)', async function () {
      const env = transfer([{ sha256: 'e'.repeat(64), size: 1 }], { inReplyTo: randomUUID() });
      const res = await submit(t.gw, bSys, signAs(env, bSys));
      expect(res.json().code).to.equal('UNKNOWN_REFERENCE');
    });
  });

  describe('an accepted transfer', function () {
    const data = randomBytes(200_000);
    const empty = Buffer.alloc(0);
    let env: Envelope;
    const path = (sha: string) => `/v1/messages/${env.id}/files/${sha}`;

    before(async function () {
      expect((await uploadFile(t.gw, bOfficer, data)).status).to.equal(204);
      expect((await uploadFile(t.gw, bSys, empty)).status).to.be.oneOf([201, 204]);
      env = transfer([
        { sha256: sha256Hex(data), size: data.length },
        { sha256: sha256Hex(empty), size: 0 },
      ]);
      const res = await submit(t.gw, bSys, signAs(env, bSys));
      expect(res.status, res.text).to.equal(202);
    });

    it('binds each file in the acceptance transaction: file.bound after message.accepted', async function () {
      const all = await entries();
      const accepted = all.find((e) => e.event === 'message.accepted' && e.messageId === env.id)!;
      const bound = all.filter((e) => e.event === 'file.bound' && e.messageId === env.id);
      expect(bound.map((e) => e.digest)).to.deep.equal([
        `sha256:${sha256Hex(data)}`,
        `sha256:${sha256Hex(empty)}`,
      ]);
      expect(bound.every((e) => e.index > accepted.index)).to.equal(true);
      const stored = all.find(
        (e) =>
          e.event === 'file.stored' &&
          e.digest === `sha256:${sha256Hex(data)}` &&
          e.actor.agency === B,
      )!;
      expect(stored.index).to.be.below(accepted.index);
      expect(stored.detail).to.deep.equal({ agency: B, size: data.length });
    });

    it('streams the file to the recipient and the sender, with ETag = the hash', async function () {
      for (const who of [aSys, bSys]) {
        const res = await rawBytes(t, who, path(sha256Hex(data)));
        expect(res.status).to.equal(200);
        expect(res.headers['content-type']).to.equal('application/octet-stream');
        expect(res.headers['etag']).to.equal(`"${sha256Hex(data)}"`);
        expect(res.body.equals(data)).to.equal(true);
      }
      const zero = await rawBytes(t, aSys, path(sha256Hex(empty)));
      expect(zero.status).to.equal(200);
      expect(zero.body.length).to.equal(0);
      const downloaded = (await entries()).filter(
        (e) => e.event === 'file.downloaded' && e.messageId === env.id,
      );
      expect(downloaded.map((e) => e.actor.agency)).to.deep.equal([A, B, A]);
    });

    it('serves a Range with 206 and refuses one outside the file with 416', async function () {
      const res = await rawBytes(t, aSys, path(sha256Hex(data)), { range: 'bytes=1000-' });
      expect(res.status).to.equal(206);
      expect(res.headers['content-range']).to.equal(`bytes 1000-${data.length - 1}/${data.length}`);
      expect(res.body.equals(data.subarray(1000))).to.equal(true);
      const mid = await rawBytes(t, aSys, path(sha256Hex(data)), { range: 'bytes=10-19' });
      expect(mid.body.equals(data.subarray(10, 20))).to.equal(true);
      const out = await rawBytes(t, aSys, path(sha256Hex(data)), {
        range: `bytes=${data.length}-`,
      });
      expect(out.status).to.equal(416);
      expect(out.headers['content-range']).to.equal(`bytes */${data.length}`);
      expect(JSON.parse(out.body.toString()).code).to.equal('RANGE_NOT_SATISFIABLE');
    });

    it('answers a third agency, an unbound hash and a traversal with 404; a malformed hash with 400', async function () {
      const third = await call(t.gw, cSys, 'GET', path(sha256Hex(data)));
      expect(third.status).to.equal(404);
      expect(third.json().code).to.equal('NOT_FOUND');
      const unbound = await call(t.gw, aSys, 'GET', path('f'.repeat(64)));
      expect(unbound.json().code).to.equal('NOT_FOUND');
      const malformed = await call(t.gw, aSys, 'GET', path('F'.repeat(64)));
      expect(malformed.status).to.equal(400);
      expect(malformed.json().code).to.equal('INVALID_PARAMETER');
      for (const bad of [
        `/v1/messages/${env.id}/files/..%2F..%2Fcasebridge.sqlite`,
        `/v1/messages/${env.id}/files/../../casebridge.sqlite`,
        `/v1/messages/${env.id}/files/%2e%2e%2f${sha256Hex(data)}`,
      ]) {
        const r = await call(t.gw, aSys, 'GET', bad);
        expect(r.status, bad).to.be.oneOf([400, 404]);
        expect(r.headers['content-type']).to.match(/problem\+json/);
      }
    });

    it('exports the transfer as CASE/UCO JSON-LD that expands against the shipped context with no term dropped', async function () {
      const res = await call(t.gw, aSys, 'GET', `/v1/messages/${env.id}/case.jsonld`);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/ld\+json/);
      const doc = res.json();
      const context = JSON.parse(readFileSync(join(SCHEMA_DIR, CONTEXT_FILE), 'utf8')) as object;
      const base = `${t.gw.url}/v1/messages/${env.id}/case.jsonld`;
      const contextUrl = new URL(CONTEXT_PATH, base).href;
      // The gateway serves the same context.
      const served = await call(t.gw, aSys, 'GET', CONTEXT_PATH);
      expect(served.json()).to.deep.equal(context);
      const requested: string[] = [];
      const documentLoader = async (url: string) => {
        requested.push(url);
        if (url !== contextUrl) throw new Error(`offline: ${url}`);
        return { documentUrl: url, document: context as jsonld.JsonLdDocument };
      };
      const expanded = await jsonld.expand(doc as jsonld.JsonLdDocument, {
        base,
        documentLoader: documentLoader as unknown as jsonld.Options.DocLoader['documentLoader'],
      });
      expect(requested).to.deep.equal([contextUrl]);

      // Every member of the export survives expansion, as an absolute IRI.
      expect(countMembers(expanded)).to.equal(countMembers(doc));
      const iris = new Set<string>();
      collectKeys(expanded, iris);
      for (const k of iris) expect(k, k).to.match(/^(https:\/\/ontology\.|urn:casebridge:|@)/);
      const types = new Set<string>();
      collectTypes(expanded, types);
      expect([...types]).to.include.members([
        'https://ontology.unifiedcyberontology.org/uco/core/Bundle',
        'https://ontology.unifiedcyberontology.org/uco/observable/File',
        'https://ontology.unifiedcyberontology.org/uco/observable/ContentDataFacet',
        'https://ontology.unifiedcyberontology.org/uco/types/Hash',
        'https://ontology.caseontology.org/case/investigation/ProvenanceRecord',
        'https://ontology.caseontology.org/case/investigation/InvestigativeAction',
      ]);
      for (const ty of types) expect(ty).to.match(/^(https:\/\/ontology\.|http:\/\/www\.w3\.org)/);

      // Hash and size of each exhibit, and the gateway's custody with log indexes.
      const nodes = JSON.stringify(expanded);
      expect(nodes).to.include(sha256Hex(data));
      const text = res.text;
      expect(text).to.include('"uco-observable:sizeInBytes":200000');
      const custody = (doc as { 'uco-core:object': Record<string, unknown>[] })[
        'uco-core:object'
      ].filter((o) => typeof o['casebridge:auditEvent'] === 'string');
      const events = custody.map((o) => o['casebridge:auditEvent']);
      expect(events).to.include.members(['file.stored', 'file.bound', 'file.downloaded']);
      for (const c of custody) expect(c['casebridge:logIndex']).to.be.a('number');
    });

    it('passes audit verify: each bound file was stored by the sender before the acceptance', async function () {
      const auditor = await identity(A, 'auditor');
      const size = await t.gw.store.treeSize();
      await eventually(async () => ((await t.gw.store.latestCheckpoint())?.size ?? 0) >= size);
      const res = await call(t.gw, auditor, 'GET', `/v1/audit/export?end=${size}`);
      expect(res.status).to.equal(200);
      const vkey = (await call(t.gw, auditor, 'GET', '/v1/audit/key')).text.trim();
      const report = await verifyBundle(res.text.split('\n'), { checkSignatures: false, vkey });
      expect(report.failures).to.deep.equal([]);
      expect(report.ok).to.equal(true);
    });

    it('has no CASE export for other message types', async function () {
      const res = await call(t.gw, aSys, 'GET', `/v1/messages/${requestId}/case.jsonld`);
      expect(res.status).to.equal(404);
    });
  });

  describe('lifecycle', function () {
    it('expires a file no message references after CASEBRIDGE_FILE_TTL_H, with file.expired; a bound file stays', async function () {
      const loose = randomBytes(3000);
      expect((await uploadFile(t.gw, aSys, loose)).status).to.equal(204);
      const objects = join(t.dataDir, 'files', 'objects');
      expect(filesOnDisk(objects)).to.include(`${A}/${sha256Hex(loose)}`);
      const boundBefore = filesOnDisk(objects).filter((f) => f.startsWith(`${B}/`));
      clock = 73 * 3_600_000;
      let report;
      try {
        report = await t.gw.sweepFiles(0);
        expect(report.expired).to.be.greaterThan(0);
      } finally {
        clock = 0;
      }
      expect(filesOnDisk(objects)).not.to.include(`${A}/${sha256Hex(loose)}`);
      const expired = (await entries()).filter((e) => e.event === 'file.expired');
      expect(expired.map((e) => e.digest)).to.include(`sha256:${sha256Hex(loose)}`);
      expect(
        expired.every((e) => e.actor.agency === 'GW-DEMO' || e.actor.agency.length > 0),
      ).to.equal(true);
      // The files bound to the accepted transfer are still there.
      const boundAfter = filesOnDisk(objects).filter((f) => f.startsWith(`${B}/`));
      const bound = t.gw.store.files;
      for (const f of boundAfter) expect(boundBefore).to.include(f);
      const kept = await Promise.all(
        boundAfter.map((f) => bound.storedFile(B, f.slice(B.length + 1))),
      );
      expect(kept.some((f) => f !== undefined)).to.equal(true);
      // Nothing of any upload is left behind by the sweep.
      expect(
        filesOnDisk(join(t.dataDir, 'files', 'uploads')).filter((f) => !f.endsWith('.json')),
      ).to.deep.equal([]);
    });

    it('answers a full disk with 507 INSUFFICIENT_STORAGE and leaves no half-written file', async function () {
      const data = randomBytes(50_000);
      const created = await createUpload(t.gw, aSys, data.length, { sha256: sha256Hex(data) });
      const loc = String(created.headers['location']);
      const id = loc.slice(loc.lastIndexOf('/') + 1);
      const partial = join(t.dataDir, 'files', 'uploads', id);
      // The partial file becomes /dev/full, which answers every write with ENOSPC.
      rmSync(partial);
      symlinkSync('/dev/full', partial);
      const res = await patchUpload(t.gw, aSys, loc, 0, data);
      expect(res.status).to.equal(507);
      expect(res.json().code).to.equal('INSUFFICIENT_STORAGE');
      expect(
        filesOnDisk(join(t.dataDir, 'files', 'uploads')).filter((f) => f.startsWith(id)),
      ).to.deep.equal([]);
      expect((await raw(t.gw, aSys, 'HEAD', loc, { 'tus-resumable': '1.0.0' })).status).to.equal(
        404,
      );
    });
  });
});

async function rawBytes(
  t: TestGateway,
  who: Identity,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const { request } = await import('node:https');
  const { getTestPki } = await import('../helpers/pki.js');
  const pki = await getTestPki();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, t.gw.url),
      {
        agent: false,
        ca: pki.files['trust.pem'],
        servername: 'localhost',
        cert: who.cert,
        key: who.key,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Non-keyword members of every object, recursively. */
function countMembers(x: unknown): number {
  if (Array.isArray(x)) return x.reduce((n: number, v) => n + countMembers(v), 0);
  if (typeof x !== 'object' || x === null) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(x)) {
    if (k === '@context') continue;
    if (!k.startsWith('@')) n++;
    n += countMembers(v);
  }
  return n;
}

function collectKeys(x: unknown, out: Set<string>): void {
  if (Array.isArray(x)) return x.forEach((v) => collectKeys(v, out));
  if (typeof x !== 'object' || x === null) return;
  for (const [k, v] of Object.entries(x)) {
    out.add(k);
    collectKeys(v, out);
  }
}

function collectTypes(x: unknown, out: Set<string>): void {
  if (Array.isArray(x)) return x.forEach((v) => collectTypes(v, out));
  if (typeof x !== 'object' || x === null) return;
  for (const [k, v] of Object.entries(x)) {
    if (k === '@type') (Array.isArray(v) ? v : [v]).forEach((ty) => out.add(String(ty)));
    else collectTypes(v, out);
  }
}
