/**
 * Builds the request of one hostile case (test/hostile/cases/*.json) with the test
 * PKI: a sample envelope patched as the case says, signed by the case's signer,
 * then its header, payload text or segments bent as the case says.
 */
import {
  constants,
  createHmac,
  createPrivateKey,
  randomUUID,
  sign as nodeSign,
  type KeyObject,
} from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { MESSAGE_TYP } from '../../src/envelope/types.js';
import {
  algorithmIdentifier,
  bitString,
  embed,
  explicit,
  oid,
  seq,
  set,
  time,
  toDer,
  uint,
  utf8,
} from '../../src/pki/asn1.js';
import { createCrl } from '../../src/pki/index.js';
import { algorithmForKey, generateKey, privateKeyPem, signWith } from '../../src/pki/keys.js';
import { parsePemChain, toPem } from '../../src/pki/pem.js';
import { OID, parseCertificate } from '../../src/pki/x509.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { floodCertificates } from '../helpers/flood.js';
import { identity, writeTemp, type Identity } from '../helpers/gateway.js';
import { getTestPki, issueTestCert } from '../helpers/pki.js';

export interface HostileCase {
  /** What the case tries, in a sentence. */
  about: string;
  /** TLS client: a signer name, or `none`. Default `a-system`. */
  client?: string;
  /** Who signs. Default `a-system`. */
  signer?: string;
  /** Shallow patch of a sample `evidence.request` envelope; `null` deletes. Strings `@-3y`, `@+1h` are times from now. */
  envelope?: Record<string, unknown>;
  /** Patch of `envelope.body.offence`. */
  offence?: Record<string, unknown>;
  /** Patch of the protected header; `null` deletes. */
  header?: Record<string, unknown>;
  /** Textual replacement in the serialized payload before encoding: [from, to]. */
  payloadReplace?: [string, string];
  /** Hex bytes spliced into the payload in place of the text `@@` (put `@@` in a string via `envelope`). */
  payloadSplice?: string;
  /** The same for the header (via `header`). */
  headerSplice?: string;
  /** Signature algorithm to fake: `none` (empty signature), `HS256`, `RS256`. */
  fakeAlg?: 'none' | 'HS256' | 'RS256';
  /** Bend a segment after signing. */
  segment?: {
    which: 'header' | 'payload' | 'signature';
    change: 'pad' | 'trailing-bits' | 'high-s';
  };
  /** Use the x5c of another signer than the one whose key signs. */
  x5cOf?: string;
  /** A body sent as is, instead of a JWS. */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Claims a Content-Length this large and sends no body. */
  declaredLength?: number;
  expect: { status: number; code?: string };
}

export interface Signer {
  key: KeyObject;
  /** PEM chain, leaf first. */
  chainPem: string;
  /** For TLS. */
  identity: Identity;
}

const P256_N = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');

function fromIdentity(i: Identity): Signer {
  return { key: createPrivateKey(i.key), chainPem: i.cert, identity: i };
}

/** A leaf signed by a certificate that is not a CA (built by hand: the issuer refuses to). */
function underNonCa(parent: { certPem: string; keyPem: string; chainPem: string }): Signer {
  const parentInfo = parseCertificate(parsePemChain(parent.certPem)[0]!.raw);
  const parentKey = createPrivateKey(parent.keyPem);
  const { privateKey, publicKey } = generateKey('ec-p256');
  const alg = algorithmForKey(parentKey);
  const subject = seq(
    [
      [OID.organizationName, 'CN-GX-CZ'],
      [OID.organizationalUnitName, 'system'],
      [OID.commonName, 'under a non-CA'],
    ].map(([o, v]) => set([seq([oid(o!), utf8(v!)])])),
  );
  const now = Date.now();
  const tbs = toDer(
    seq([
      explicit(0, uint(2)),
      uint(Buffer.from([0x11, 0x22, 0x33])),
      algorithmIdentifier(alg),
      embed(parentInfo.subjectDer),
      seq([time(new Date(now - 3_600_000)), time(new Date(now + 86_400_000))]),
      subject,
      embed(publicKey.export({ type: 'spki', format: 'der' })),
    ]),
  );
  const der = toDer(
    seq([embed(tbs), algorithmIdentifier(alg), bitString(signWith(alg, parentKey, tbs))]),
  );
  const chainPem = toPem('CERTIFICATE', der) + parent.chainPem;
  return {
    key: privateKey,
    chainPem,
    identity: { cert: chainPem, key: privateKeyPem(privateKey) },
  };
}

export interface HostileWorld {
  signers: Map<string, Signer>;
  /** A CRL file (the dev CRLs plus one revoking the `revoked` signer). */
  crlPath: string;
}

/** Every signer the cases name. */
export async function hostileWorld(): Promise<HostileWorld> {
  const pki = await getTestPki();
  const signers = new Map<string, Signer>();
  signers.set('a-system', fromIdentity(await identity('CN-GX-CZ', 'system')));
  signers.set('a-officer', fromIdentity(await identity('CN-GX-CZ', 'officer')));
  signers.set('a-auditor', fromIdentity(await identity('CN-GX-CZ', 'auditor')));
  signers.set('b-system', fromIdentity(await identity('VN-LS', 'system')));
  const issued = async (name: string, opts: Parameters<typeof issueTestCert>[0]) => {
    const c = await issueTestCert(opts);
    signers.set(name, {
      key: c.key,
      chainPem: c.chainPem,
      identity: { cert: c.chainPem, key: c.keyPem },
    });
    return c;
  };
  const day = 86_400_000;
  await issued('expired', {
    notBefore: new Date(Date.now() - 400 * day),
    notAfter: new Date(Date.now() - day),
  });
  await issued('not-yet-valid', {
    notBefore: new Date(Date.now() + day),
    notAfter: new Date(Date.now() + 400 * day),
  });
  await issued('recent', { notBefore: new Date(Date.now() - 3_600_000) });
  await issued('untrusted-root', { issuer: 'untrusted' });
  await issued('ca-as-leaf', { isCa: true });
  await issued('unregistered-agency', { agency: 'XX-NOWHERE' });
  const revoked = await issued('revoked', {});
  const plain = await issued('plain', {});
  signers.set('under-non-ca', underNonCa(plain));
  const flood = floodCertificates(2048);
  const selfPem = flood.next();
  signers.set('self-signed-registered', {
    key: createPrivateKey(flood.keyPem),
    chainPem: selfPem,
    identity: { cert: selfPem, key: flood.keyPem },
  });
  const crl = createCrl({
    caCert: pki.files['ca/cn-root.crt.pem']!,
    caKey: pki.files['ca/cn-root.key.pem']!,
    revoked: [{ serialHex: revoked.serialHex, at: new Date() }],
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + 7 * day),
  });
  const crlPath = writeTemp('crl.pem', crl);
  writeFileSync(crlPath, pki.files['crl.pem']! + crl);
  return { signers, crlPath };
}

const RELATIVE = /^@([+-]\d+)([smhdy])$/;
const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  y: 365 * 86_400_000,
};

function resolveTimes(v: unknown): unknown {
  if (typeof v === 'string') {
    const m = RELATIVE.exec(v);
    if (m) return new Date(Date.now() + Number(m[1]) * UNIT_MS[m[2]!]!).toISOString();
  }
  return v;
}

function patch(target: Record<string, unknown>, p: Record<string, unknown> | undefined): void {
  for (const [k, v] of Object.entries(p ?? {})) {
    if (v === null) delete target[k];
    else target[k] = resolveTimes(v);
  }
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function splice(text: string, hex: string | undefined): Buffer {
  if (hex === undefined) return Buffer.from(text, 'utf8');
  const [before, after] = text.split('@@') as [string, string];
  return Buffer.concat([Buffer.from(before), Buffer.from(hex, 'hex'), Buffer.from(after)]);
}

/** Flips the last character's unused low bits on (canonical base64url has them zero). */
function setTrailingBits(seg: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const unused = seg.length % 4 === 2 ? 4 : seg.length % 4 === 3 ? 2 : 0;
  if (unused === 0) throw new Error('segment has no trailing bits; pick another');
  const last = alphabet.indexOf(seg[seg.length - 1]!);
  return seg.slice(0, -1) + alphabet[last | 1]!;
}

function highS(sig: string): string {
  const b = Buffer.from(sig, 'base64url');
  const s = BigInt('0x' + b.subarray(32).toString('hex'));
  const hs = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return b64url(Buffer.concat([b.subarray(0, 32), hs]));
}

export interface BuiltRequest {
  client: Identity | undefined;
  contentType: string;
  headers: Record<string, string>;
  body: Buffer;
  declaredLength?: number;
  /** The envelope id, when the body is a JWS. */
  id?: string;
}

export function buildRequest(c: HostileCase, world: HostileWorld): BuiltRequest {
  const signerOf = (name: string): Signer => {
    const s = world.signers.get(name);
    if (!s) throw new Error(`unknown signer ${name}`);
    return s;
  };
  const clientName = c.client ?? c.signer ?? 'a-system';
  const client = clientName === 'none' ? undefined : signerOf(clientName).identity;
  const base = {
    client,
    contentType: c.contentType ?? 'application/jose',
    headers: c.headers ?? {},
    ...(c.declaredLength === undefined ? {} : { declaredLength: c.declaredLength }),
  };
  if (c.raw !== undefined) return { ...base, body: Buffer.from(c.raw, 'utf8') };

  const signer = signerOf(c.signer ?? 'a-system');
  const env = sampleEnvelope('evidence.request', { id: randomUUID() }) as unknown as Record<
    string,
    unknown
  >;
  patch(env, c.envelope);
  const body = env['body'] as { offence: Record<string, unknown> };
  patch(body.offence, c.offence);
  const chain = parsePemChain(signerOf(c.x5cOf ?? c.signer ?? 'a-system').chainPem);
  const header: Record<string, unknown> = {
    alg: c.fakeAlg ?? algForSigner(signer.key),
    typ: MESSAGE_TYP,
    x5c: chain.map((x) => x.raw.toString('base64')),
  };
  patch(header, c.header);

  let payloadText = JSON.stringify(env);
  if (c.payloadReplace) {
    const [from, to] = c.payloadReplace;
    if (!payloadText.includes(from)) throw new Error(`payload has no ${from}`);
    payloadText = payloadText.replace(from, to);
  }
  let headerText = JSON.stringify(header);
  // Trailing bits exist only when a segment's length is not a multiple of 4: pad the
  // JSON with a space (insignificant whitespace) until it is not.
  const bend = c.segment?.change === 'trailing-bits' ? c.segment.which : undefined;
  while (bend === 'header' && b64url(headerText).length % 4 === 0) headerText += ' ';
  while (bend === 'payload' && b64url(payloadText).length % 4 === 0) payloadText += ' ';
  const h = b64url(splice(headerText, c.headerSplice));
  const p = b64url(splice(payloadText, c.payloadSplice));
  let s: string;
  if (c.fakeAlg === 'none') s = '';
  else if (c.fakeAlg === 'HS256')
    s = b64url(createHmac('sha256', 'shared-secret').update(`${h}.${p}`).digest());
  // The exact segments are signed, since they may be bent on purpose.
  else s = signSegments(h, p, signer.key, header['alg'] as string);
  let segs = [h, p, s];
  if (c.segment) {
    const i = ['header', 'payload', 'signature'].indexOf(c.segment.which);
    const seg = segs[i]!;
    segs[i] =
      c.segment.change === 'pad'
        ? seg + '='.repeat((4 - (seg.length % 4)) % 4 || 2)
        : c.segment.change === 'trailing-bits'
          ? setTrailingBits(seg)
          : highS(seg);
    segs = [...segs];
  }
  return { ...base, body: Buffer.from(segs.join('.'), 'ascii'), id: env['id'] as string };
}

function algForSigner(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec') return curve === 'secp384r1' ? 'ES384' : 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  return 'PS256';
}

function signSegments(h: string, p: string, key: KeyObject, alg: string): string {
  const input = Buffer.from(`${h}.${p}`, 'ascii');
  if (alg === 'RS256') {
    // A key that fits RS256 (the signer's EC key does not): the header is refused first.
    const rsa = generateKey('rsa', { rsaBits: 2048 }).privateKey;
    return b64url(signWith(algorithmForKey(rsa), rsa, input));
  }
  return b64url(signWithAlg(alg)(input, key));
}

function signWithAlg(alg: string): (input: Buffer, key: KeyObject) => Buffer {
  switch (alg) {
    case 'ES256':
      return (i, key) => nodeSign('sha256', i, { key, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return (i, key) => nodeSign('sha384', i, { key, dsaEncoding: 'ieee-p1363' });
    case 'PS256':
      return (i, key) =>
        nodeSign('sha256', i, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    default:
      return (i, key) => nodeSign(null, i, key);
  }
}
