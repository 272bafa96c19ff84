import { statSync } from 'node:fs';
import { expect } from 'chai';
import { DEV_AGENCIES, createCrl, parseCrlPem, parsePemChain } from '../../src/pki/index.js';
import { getTestPki, testTrustStore } from '../helpers/pki.js';

describe('pki/dev-pki', function () {
  it('writes the fixed layout, keys 0600', async function () {
    const pki = await getTestPki();
    const expected = [
      'ca/cn-root.crt.pem',
      'ca/cn-root.key.pem',
      'ca/vn-root.crt.pem',
      'ca/vn-root.key.pem',
      'ca/cn-south.crt.pem',
      'ca/cn-south.key.pem',
      'trust.pem',
      'crl.pem',
      'gateway/gateway.crt.pem',
      'gateway/gateway.key.pem',
      'operator/auditor.crt.pem',
      'operator/auditor.key.pem',
      'data/data.key.pem',
      'log/log.key.pem',
      'log/log.pub.pem',
      'registry.json',
    ];
    for (const a of ['CN-GX-CZ', 'CN-GD', 'MO-PJ', 'VN-LS', 'VN-CB']) {
      for (const r of ['system', 'officer', 'auditor'])
        expected.push(`agencies/${a}/${r}.crt.pem`, `agencies/${a}/${r}.key.pem`);
    }
    expect(Object.keys(pki.files).sort()).to.deep.equal(expected.sort());
    for (const rel of expected) {
      const mode = statSync(pki.path(rel)).mode & 0o777;
      expect(mode, rel).to.equal(rel.endsWith('.key.pem') ? 0o600 : 0o644);
    }
    expect(parsePemChain(pki.text('trust.pem'))).to.have.length(2);
    expect(parseCrlPem(pki.text('crl.pem')).every((c) => c.revoked.length === 0)).to.equal(true);
    expect(pki.text('log/log.key.pem')).to.match(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('every agency certificate verifies, under the right CA, for about two years', async function () {
    const pki = await getTestPki();
    const store = await testTrustStore();
    for (const a of DEV_AGENCIES) {
      for (const role of ['system', 'officer', 'auditor'] as const) {
        const chain = parsePemChain(pki.text(`agencies/${a.id}/${role}.crt.pem`));
        expect(chain).to.have.length(a.ca === 'cn-south' ? 2 : 1);
        const p = store.verifyChain(chain, new Date());
        expect([p.agency, p.role]).to.deep.equal([a.id, role]);
        const days = (Date.parse(chain[0]!.validTo) - Date.now()) / 86_400_000;
        expect(days).to.be.within(728, 731);
      }
    }
    expect(store.crlSummary()).to.deep.include({ crls: 3, pending: 0 });
  });

  it('ships a registry naming the five agencies and three agreements', async function () {
    const pki = await getTestPki();
    const reg = JSON.parse(pki.text('registry.json')) as {
      gateway: { id: string };
      agencies: unknown[];
      agreements: unknown[];
    };
    expect(reg.gateway.id).to.equal('GW-DEMO');
    expect(reg.agencies).to.have.length(5);
    expect(reg.agreements).to.have.length(3);
  });

  it('its CA keys sign CRLs (pki revoke needs them)', async function () {
    const pki = await getTestPki();
    const pem = createCrl({
      caCert: pki.text('ca/cn-south.crt.pem'),
      caKey: pki.text('ca/cn-south.key.pem'),
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 1000),
    });
    expect(parseCrlPem(pem)).to.have.length(1);
  });
});
