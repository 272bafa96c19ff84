import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import {
  PkiError,
  TrustStore,
  chainFromX5c,
  createCrl,
  issueCertificate,
  parsePemChain,
  type ChainFailure,
} from '../../src/pki/index.js';
import { getTestPki, issueTestCert, testTrustStore, type TestPki } from '../helpers/pki.js';

const DAY = 86_400_000;

function failureOf(fn: () => unknown): ChainFailure | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof PkiError) return e.failure;
    throw e;
  }
  return undefined;
}

describe('pki/TrustStore', function () {
  let pki: TestPki;
  let store: TrustStore;

  before(async function () {
    pki = await getTestPki();
    store = await testTrustStore();
  });

  const chainOf = (rel: string): X509Certificate[] => parsePemChain(pki.text(rel));

  it('verifies a leaf issued by a root and reads O, OU, CN and the subject digest', function () {
    const chain = chainOf('agencies/CN-GX-CZ/officer.crt.pem');
    const p = store.verifyChain(chain, new Date());
    expect(p.agency).to.equal('CN-GX-CZ');
    expect(p.role).to.equal('officer');
    expect(p.name).to.equal('Officer 01 CN-GX-CZ');
    expect(p.subject).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(p.certificate.raw.equals(chain[0]!.raw)).to.equal(true);
  });

  it('verifies a chain through the intermediate, with or without the root appended', function () {
    const chain = chainOf('agencies/MO-PJ/system.crt.pem');
    expect(chain).to.have.length(2);
    expect(store.verifyChain(chain, new Date()).agency).to.equal('MO-PJ');
    const withRoot = [...chain, new X509Certificate(pki.text('ca/cn-root.crt.pem'))];
    expect(store.verifyChain(withRoot, new Date()).role).to.equal('system');
  });

  it('refuses a leaf under the intermediate without the intermediate: untrusted', function () {
    const [leaf] = chainOf('agencies/CN-GD/system.crt.pem');
    expect(failureOf(() => store.verifyChain([leaf!], new Date()))).to.equal('untrusted');
  });

  it('parses roles: system, officer, auditor for agencies; gateway only for the gateway id', async function () {
    for (const role of ['system', 'officer', 'auditor'] as const) {
      expect(
        store.verifyChain(chainOf(`agencies/VN-LS/${role}.crt.pem`), new Date()).role,
      ).to.equal(role);
    }
    const gw = store.verifyChain(chainOf('gateway/gateway.crt.pem'), new Date());
    expect([gw.agency, gw.role]).to.deep.equal(['GW-DEMO', 'gateway']);
    const fakeGateway = await issueTestCert({ agency: 'CN-GX-CZ', role: 'gateway' });
    expect(failureOf(() => store.verifyChain(fakeGateway.chain, new Date()))).to.equal(
      'bad-subject',
    );
    const agencyAsGateway = await issueTestCert({ agency: 'GW-DEMO', role: 'officer' });
    expect(failureOf(() => store.verifyChain(agencyAsGateway.chain, new Date()))).to.equal(
      'bad-subject',
    );
    const systemAsGateway = await issueTestCert({ agency: 'GW-DEMO', role: 'system' });
    expect(failureOf(() => store.verifyChain(systemAsGateway.chain, new Date()))).to.equal(
      'bad-subject',
    );
  });

  it("accepts the gateway operator's auditor (O = gateway id, OU = auditor)", function () {
    const op = store.verifyChain(chainOf('operator/auditor.crt.pem'), new Date());
    expect([op.agency, op.role]).to.deep.equal(['GW-DEMO', 'auditor']);
  });

  it('refuses an unknown role in OU: bad-subject', async function () {
    // Role is typed; a cast stands in for a certificate from a foreign tool.
    const c = await issueTestCert({ role: 'admin' as 'system' });
    expect(failureOf(() => store.verifyChain(c.chain, new Date()))).to.equal('bad-subject');
  });

  it('refuses an O that is not a registered agency: bad-subject', async function () {
    const c = await issueTestCert({ agency: 'TH-BKK' });
    expect(failureOf(() => store.verifyChain(c.chain, new Date()))).to.equal('bad-subject');
  });

  it('limits roles when asked', async function () {
    const tlsOnly = await testTrustStore({ roles: ['system', 'officer'] });
    expect(
      failureOf(() => tlsOnly.verifyChain(chainOf('agencies/VN-LS/auditor.crt.pem'), new Date())),
    ).to.equal('bad-subject');
  });

  it('refuses a chain from an untrusted root: untrusted (also with the root included)', async function () {
    const c = await issueTestCert({ issuer: 'untrusted' });
    expect(failureOf(() => store.verifyChain(c.chain, new Date()))).to.equal('untrusted');
    const { chain } = c;
    expect(failureOf(() => store.verifyChain([chain[0]!, chain[0]!], new Date()))).to.equal(
      'untrusted',
    );
  });

  it('refuses an expired and a not-yet-valid certificate, and checks time per call', async function () {
    const now = Date.now();
    const MIN = 60_000;
    // Inside the test CAs' validity, which starts an hour before the PKI was made.
    const expired = await issueTestCert({
      notBefore: new Date(now - 50 * MIN),
      notAfter: new Date(now - 10 * MIN),
    });
    expect(failureOf(() => store.verifyChain(expired.chain, new Date()))).to.equal('expired');
    // The same chain (now cached) verifies at an instant inside its validity.
    expect(store.verifyChain(expired.chain, new Date(now - 30 * MIN)).agency).to.equal('CN-GX-CZ');
    const future = await issueTestCert({
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 30 * DAY),
    });
    expect(failureOf(() => store.verifyChain(future.chain, new Date()))).to.equal('not-yet-valid');
  });

  it('refuses a leaf that is a CA: bad-usage', async function () {
    const c = await issueTestCert({ isCa: true });
    expect(c.cert.ca).to.equal(true);
    expect(failureOf(() => store.verifyChain(c.chain, new Date()))).to.equal('bad-usage');
  });

  it('will not issue under a leaf (not a CA): bad-usage', async function () {
    const parent = await issueTestCert({});
    expect(
      failureOf(() =>
        issueCertificate({
          caCert: parent.certPem,
          caKey: parent.keyPem,
          agency: 'CN-GX-CZ',
          role: 'system',
          name: 'x',
        }),
      ),
    ).to.equal('bad-usage');
  });

  it('refuses an empty chain: malformed; chainFromX5c refuses garbage: malformed', function () {
    expect(failureOf(() => store.verifyChain([], new Date()))).to.equal('malformed');
    expect(failureOf(() => chainFromX5c(['not base64!']))).to.equal('malformed');
    expect(failureOf(() => chainFromX5c([Buffer.from('garbage').toString('base64')]))).to.equal(
      'malformed',
    );
    expect(failureOf(() => chainFromX5c('MIIB'))).to.equal('malformed');
    expect(failureOf(() => chainFromX5c([]))).to.equal('malformed');
    const good = chainOf('agencies/CN-GD/officer.crt.pem').map((c) => c.raw.toString('base64'));
    expect(failureOf(() => chainFromX5c([good[0]!.replace(/=+$/, '') + '-_']))).to.equal(
      'malformed',
    );
    const parsed = chainFromX5c(good);
    expect(store.verifyChain(parsed, new Date()).agency).to.equal('CN-GD');
  });

  describe('revocation', function () {
    it('refuses a revoked certificate after a CRL reload, accepts it again after an empty CRL', async function () {
      const s = await testTrustStore();
      const c = await issueTestCert({ issuer: 'cn-south', agency: 'CN-GD', role: 'officer' });
      expect(s.verifyChain(c.chain, new Date()).agency).to.equal('CN-GD');

      const now = new Date();
      const crlFor = (revoked: Array<{ serialHex: string; at: Date }>): string =>
        createCrl({
          caCert: pki.text('ca/cn-south.crt.pem'),
          caKey: pki.text('ca/cn-south.key.pem'),
          revoked,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + 7 * DAY),
        });
      const summary = s.reloadCrls(
        pki.text('crl.pem').split('-----END X509 CRL-----\n')[0] +
          '-----END X509 CRL-----\n' +
          crlFor([{ serialHex: c.serialHex, at: now }]),
      );
      expect(summary.crls).to.equal(2);
      expect(summary.revoked).to.equal(1);
      expect(failureOf(() => s.verifyChain(c.chain, new Date()))).to.equal('revoked');

      s.reloadCrls(crlFor([]));
      expect(s.verifyChain(c.chain, new Date()).agency).to.equal('CN-GD');
    });

    it('verifies a CRL of an intermediate only seen after loading (pending until its chain is validated)', async function () {
      const c = await issueTestCert({ issuer: 'cn-south', agency: 'MO-PJ', role: 'system' });
      const now = new Date();
      const crl = createCrl({
        caCert: pki.text('ca/cn-south.crt.pem'),
        caKey: pki.text('ca/cn-south.key.pem'),
        revoked: [{ serialHex: c.serialHex, at: now }],
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + DAY),
      });
      const fresh = new TrustStore({
        anchorsPem: pki.text('trust.pem'),
        crlPem: crl,
        gatewayId: 'GW-DEMO',
      });
      expect(fresh.crlSummary().pending).to.equal(1);
      expect(failureOf(() => fresh.verifyChain(c.chain, new Date()))).to.equal('revoked');
      expect(fresh.crlSummary()).to.deep.include({ pending: 0, revoked: 1 });
    });

    it('revokes by issuer and serial: the same serial from another CA is not affected', async function () {
      const s = await testTrustStore();
      const c = await issueTestCert({ issuer: 'vn-root', agency: 'VN-LS' });
      const now = new Date();
      s.reloadCrls(
        createCrl({
          caCert: pki.text('ca/cn-root.crt.pem'),
          caKey: pki.text('ca/cn-root.key.pem'),
          revoked: [{ serialHex: c.serialHex, at: now }],
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + DAY),
        }),
      );
      expect(s.verifyChain(c.chain, new Date()).agency).to.equal('VN-LS');
    });

    it('refuses a CRL with a tampered signature and keeps the old data', async function () {
      const s = await testTrustStore();
      const c = await issueTestCert({});
      const now = new Date();
      const good = createCrl({
        caCert: pki.text('ca/cn-root.crt.pem'),
        caKey: pki.text('ca/cn-root.key.pem'),
        revoked: [{ serialHex: c.serialHex, at: now }],
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + DAY),
      });
      s.reloadCrls(good);
      expect(failureOf(() => s.verifyChain(c.chain, new Date()))).to.equal('revoked');

      // An empty CRL whose signature is damaged (last byte of the DER flipped).
      const emptyPem = createCrl({
        caCert: pki.text('ca/cn-root.crt.pem'),
        caKey: pki.text('ca/cn-root.key.pem'),
        thisUpdate: new Date(now.getTime() + 1000),
        nextUpdate: new Date(now.getTime() + DAY),
      });
      const der = Buffer.from(emptyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der.writeUInt8(der.readUInt8(der.length - 1) ^ 0x01, der.length - 1);
      const tampered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
      expect(failureOf(() => s.reloadCrls(tampered))).to.equal('malformed');
      expect(
        failureOf(() => s.reloadCrls('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')),
      ).to.equal('malformed');
      expect(failureOf(() => s.verifyChain(c.chain, new Date()))).to.equal('revoked');
      expect(s.crlSummary().revoked).to.equal(1);
    });
  });

  it('parses x5c once per certificate and still refuses garbage', function () {
    const x5c = chainOf('agencies/CN-GD/officer.crt.pem').map((c) => c.raw.toString('base64'));
    const a = store.chainFromX5c(x5c);
    const b = store.chainFromX5c([...x5c]);
    expect(b[0]).to.equal(a[0]);
    expect(store.verifyChain(b, new Date()).agency).to.equal('CN-GD');
    expect(failureOf(() => store.chainFromX5c([x5c[0]!, 'AAAA']))).to.equal('malformed');
    expect(failureOf(() => store.chainFromX5c([1]))).to.equal('malformed');
    expect(failureOf(() => store.chainFromX5c(new Array(9).fill(x5c[0])))).to.equal('malformed');
    const der = store.chainFromDer(a.map((c) => c.raw));
    expect(der[1]).to.equal(a[1]);
  });

  it('exposes the anchors', function () {
    expect(store.anchorCertificates()).to.have.length(2);
    expect(store.anchorsPem().join('')).to.equal(pki.text('trust.pem'));
  });

  it('tags configuration errors with their source', function () {
    try {
      new TrustStore({ anchorsPem: 'nothing here' });
      expect.fail('should throw');
    } catch (e) {
      expect(e).to.be.instanceOf(PkiError);
      expect((e as PkiError).source).to.equal('anchors');
    }
    try {
      new TrustStore({
        anchorsPem: pki.text('trust.pem'),
        crlPem: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n',
      });
      expect.fail('should throw');
    } catch (e) {
      expect((e as PkiError).source).to.equal('crl');
    }
  });
});
