import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { PkiError, createCrl, createRootCa, parseCrlPem, verifyCrls } from '../../src/pki/index.js';
import { getTestPki } from '../helpers/pki.js';

const DAY = 86_400_000;

describe('pki/crl', function () {
  it('round-trips a v2 CRL: issuer, times, number and revoked serials', async function () {
    const pki = await getTestPki();
    const thisUpdate = new Date('2026-03-01T10:00:00Z');
    const pem = createCrl({
      caCert: pki.text('ca/vn-root.crt.pem'),
      caKey: pki.text('ca/vn-root.key.pem'),
      revoked: [
        { serialHex: '00:7F:01', at: new Date('2026-02-01T00:00:00Z') },
        { serialHex: 'ABCDEF0123', at: new Date('2026-02-02T00:00:00Z') },
      ],
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + 7 * DAY),
      crlNumber: 42n,
    });
    const [crl, more] = parseCrlPem(pem);
    expect(more).to.equal(undefined);
    expect(crl!.thisUpdate.toISOString()).to.equal(thisUpdate.toISOString());
    expect(crl!.nextUpdate!.getTime() - thisUpdate.getTime()).to.equal(7 * DAY);
    expect(crl!.crlNumber).to.equal(42n);
    expect(crl!.revoked.map((r) => r.serialHex)).to.deep.equal(['7f01', 'abcdef0123']);
    const anchors = [
      new X509Certificate(pki.text('ca/cn-root.crt.pem')),
      new X509Certificate(pki.text('ca/vn-root.crt.pem')),
    ];
    const v = verifyCrls(pem, anchors);
    expect(v.count).to.equal(1);
    expect([...v.byIssuer.get(anchors[1]!.fingerprint256)!]).to.deep.equal(['7f01', 'abcdef0123']);
  });

  it('reads one CRL block per CA from one file; an unknown issuer is left unresolved', async function () {
    const pki = await getTestPki();
    const all = pki.text('crl.pem');
    expect(parseCrlPem(all)).to.have.length(3);
    const anchors = [
      new X509Certificate(pki.text('ca/cn-root.crt.pem')),
      new X509Certificate(pki.text('ca/vn-root.crt.pem')),
    ];
    const v = verifyCrls(all, anchors);
    expect(v.byIssuer.size).to.equal(2);
    expect(v.unresolved).to.have.length(1);
    const withInter = verifyCrls(all, [
      ...anchors,
      new X509Certificate(pki.text('ca/cn-south.crt.pem')),
    ]);
    expect(withInter.byIssuer.size).to.equal(3);
    expect(withInter.unresolved).to.have.length(0);
  });

  it('refuses a CRL signed by another key under the same issuer name', async function () {
    const pki = await getTestPki();
    // Same Subject as the dev CN root, different key.
    const impostor = createRootCa({
      name: 'casebridge Dev Root CA CN',
      org: 'casebridge dev CN',
      country: 'CN',
    });
    const pem = createCrl({
      caCert: impostor.certPem,
      caKey: impostor.keyPem,
      revoked: [{ serialHex: '01', at: new Date() }],
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + DAY),
    });
    expect(() => verifyCrls(pem, [new X509Certificate(pki.text('ca/cn-root.crt.pem'))]))
      .to.throw(PkiError)
      .with.property('failure', 'malformed');
  });

  it('refuses malformed CRL DER', function () {
    for (const body of ['MAA=', 'MIIBAA==', Buffer.from('not a crl at all').toString('base64')]) {
      expect(() => parseCrlPem(`-----BEGIN X509 CRL-----\n${body}\n-----END X509 CRL-----\n`))
        .to.throw(PkiError)
        .with.property('failure', 'malformed');
    }
  });
});
