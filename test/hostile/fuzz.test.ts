/**
 * Property-based fuzzing (fast-check) of the strict decoders and the submission
 * path. Rules: the decoders fail only with MALFORMED; the submission path never
 * answers 5xx; whatever the gateway accepts, the offline verifier accepts.
 * Each property prints how many cases it ran.
 */
import { createPrivateKey, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:https';
import { expect } from 'chai';
import fc from 'fast-check';
import { SignatureChecker, parsePemCertificates } from '../../src/audit/signatures.js';
import { decodeJws } from '../../src/envelope/decode.js';
import { signCompactSync, x5cOf } from '../../src/envelope/jws.js';
import { MESSAGE_TYP } from '../../src/envelope/types.js';
import { isCasebridgeError } from '../../src/errors.js';
import { parsePemChain } from '../../src/pki/pem.js';
import { nonPlainNumberPointers, parseStrictJson } from '../../src/schema/strict-json.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { identity, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 400);
const SUBMIT_RUNS = Number(process.env['FUZZ_SUBMIT_RUNS'] ?? 300);

function report(name: string, runs: number): void {
  process.stdout.write(`      fuzz ${name}: ${runs} cases\n`);
}

/** Only MALFORMED may escape a strict decoder. */
function malformedOnly(f: () => unknown): 'ok' | 'malformed' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (isCasebridgeError(e) && e.code === 'MALFORMED') return 'malformed';
    throw e;
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

describe('fuzz (fast-check)', function () {
  describe('strict JSON decoder', function () {
    it('reads every JSON text as JSON.parse does, and refuses only with MALFORMED', function () {
      fc.assert(
        fc.property(fc.json(), (text) => {
          expect(parseStrictJson(text)).to.deep.equal(JSON.parse(text));
        }),
        { numRuns: RUNS },
      );
      fc.assert(
        fc.property(fc.string({ unit: 'binary' }), (text) => {
          malformedOnly(() => parseStrictJson(text));
        }),
        { numRuns: RUNS },
      );
      report('strict JSON', 2 * RUNS);
    });

    it('finds exactly the numbers not written as plain integers', function () {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const text = JSON.stringify(value);
          const expected: string[] = [];
          const walk = (v: unknown, p: string) => {
            if (typeof v === 'number') {
              if (!/^-?(0|[1-9]\d*)$/.test(JSON.stringify(v))) expected.push(p);
            } else if (Array.isArray(v)) v.forEach((e, i) => walk(e, `${p}/${i}`));
            else if (v !== null && typeof v === 'object')
              for (const [k, e] of Object.entries(v))
                walk(e, `${p}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
          };
          walk(JSON.parse(text), '');
          expect(nonPlainNumberPointers(text).sort()).to.deep.equal(expected.sort());
        }),
        { numRuns: RUNS },
      );
      report('number forms', RUNS);
    });
  });

  describe('JWS decoder', function () {
    it('decodes only canonical segments, and fails only with MALFORMED', async function () {
      const aSys = await identity('CN-GX-CZ', 'system');
      const jws = signCompactSync(
        { alg: 'ES256', typ: MESSAGE_TYP, x5c: x5cOf(parsePemChain(aSys.cert)) },
        JSON.stringify(sampleEnvelope('evidence.request')),
        createPrivateKey(aSys.key),
      );
      const mutation = fc.record({
        at: fc.nat(),
        ch: fc.constantFrom(...B64URL, '=', '.', '+', '/', ' '),
      });
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
          let s = jws;
          for (const m of ms) {
            const i = m.at % s.length;
            s = s.slice(0, i) + m.ch + s.slice(i + 1);
          }
          if (malformedOnly(() => decodeJws(s)) === 'ok') {
            // Decoded: every segment is the one encoding of its bytes.
            for (const seg of s.split('.'))
              expect(Buffer.from(seg, 'base64url').toString('base64url')).to.equal(seg);
          }
        }),
        { numRuns: RUNS },
      );
      fc.assert(
        fc.property(fc.string(), (s) => {
          malformedOnly(() => decodeJws(s));
        }),
        { numRuns: RUNS },
      );
      report('JWS decoder', 2 * RUNS);
    });
  });

  describe('submission path', function () {
    let t: TestGateway;
    let agent: Agent;
    before(async function () {
      t = await startTestGateway({ CASEBRIDGE_RATE_PER_MIN: '1000000' });
      const aSys = await identity('CN-GX-CZ', 'system');
      const pki = await getTestPki();
      agent = new Agent({
        keepAlive: true,
        maxSockets: 4,
        ca: pki.files['trust.pem'],
        cert: aSys.cert,
        key: aSys.key,
        servername: 'localhost',
      });
    });
    after(async () => {
      agent?.destroy();
      await t?.stop();
    });

    function post(body: string): Promise<{ status: number; code?: string }> {
      return new Promise((resolve, reject) => {
        const req = request(
          new URL('/v1/messages', t.gw.url),
          {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/jose',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              const code = (JSON.parse(text) as { code?: string }).code;
              resolve({ status: res.statusCode ?? 0, ...(code ? { code } : {}) });
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    }

    it('never answers 5xx, and what it accepts the offline verifier accepts', async function () {
      this.timeout(180_000);
      const pki = await getTestPki();
      const aSys = await identity('CN-GX-CZ', 'system');
      const key = createPrivateKey(aSys.key);
      const x5c = x5cOf(parsePemChain(aSys.cert));
      // The auditor's own anchors, pinned.
      const verifier = new SignatureChecker(parsePemCertificates([pki.files['trust.pem']!]));

      // Each dimension is benign most of the time, so that many runs are accepted.
      const mostly = <T>(benign: T, hostile: fc.Arbitrary<T>) =>
        fc.oneof({ weight: 3, arbitrary: fc.constant(benign) }, { weight: 1, arbitrary: hostile });
      const headerExtra = fc.oneof(
        { weight: 6, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.record({ b64: fc.boolean() }) },
        { weight: 1, arbitrary: fc.record({ crit: fc.constantFrom(['b64'], ['exp'], []) }) },
        { weight: 1, arbitrary: fc.record({ kid: fc.string({ unit: 'binary', maxLength: 8 }) }) },
        {
          weight: 1,
          arbitrary: fc.record({
            alg: fc.constantFrom('none', 'HS256', 'RS256', 'ES384', 'es256'),
          }),
        },
      );
      const versionForm = mostly('1', fc.constantFrom('1.0', '1e0', '-0', '10e-1'));
      const ageMs = fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 6 * 86_400_000 }) },
        { weight: 1, arbitrary: fc.integer({ min: -3_600_000, max: 10 * 365 * 86_400_000 }) },
      );
      const bytesIn = mostly<Uint8Array | undefined>(
        undefined,
        fc.uint8Array({ minLength: 1, maxLength: 3 }),
      );
      const flip = mostly<{ at: number; ch: string } | undefined>(
        undefined,
        fc.record({ at: fc.nat(), ch: fc.constantFrom(...B64URL, '=') }),
      );

      let accepted = 0;
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(
          headerExtra,
          versionForm,
          ageMs,
          bytesIn,
          flip,
          async (extra, version, age, bytes, f) => {
            runs++;
            const env = sampleEnvelope('evidence.request', {
              id: randomUUID(),
              createdAt: new Date(Date.now() - age).toISOString(),
            });
            let payload = Buffer.from(
              JSON.stringify(env).replace('"version":1', `"version":${version}`),
            );
            if (bytes) {
              const at = payload.indexOf('"caseRef":"') + 11;
              payload = Buffer.concat([payload.subarray(0, at), bytes, payload.subarray(at)]);
            }
            const header = { alg: 'ES256', typ: MESSAGE_TYP, x5c, ...extra };
            let jws = signCompactSync({ ...header, alg: 'ES256' }, payload, key);
            if (header.alg !== 'ES256') {
              const [, p, s] = jws.split('.');
              jws = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.${s}`;
            }
            if (f) {
              const i = f.at % jws.length;
              if (jws[i] !== '.') jws = jws.slice(0, i) + f.ch + jws.slice(i + 1);
            }
            const answer = await post(jws);
            expect(answer.status, JSON.stringify(answer)).to.be.below(500);
            if (answer.status === 202 || answer.status === 200) {
              accepted++;
              const at = new Date(Date.parse(env.createdAt));
              const offline = verifier.verify(jws, MESSAGE_TYP, at);
              expect(offline.ok, JSON.stringify(offline)).to.equal(true);
            }
          },
        ),
        { numRuns: SUBMIT_RUNS },
      );
      report(`submission path (${accepted} accepted)`, runs);
      // About one run in twenty is wholly benign; some must be, or the rule was never tested.
      expect(accepted).to.be.at.least(3);
    });
  });
});
