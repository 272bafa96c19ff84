import { X509Certificate, sign, verify } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  createCrl,
  createIntermediateCa,
  createRootCa,
  issueCertificate,
  parsePemChain,
} from '../../src/pki/index.js';
import { parseCertificate, OID, KEY_USAGE } from '../../src/pki/x509.js';
import { getTestPki, issueTestCert, testTrustStore } from '../helpers/pki.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('pki/issue', function () {
  const cases = [
    { keyType: 'ec-p256', hash: 'sha256', asymmetricKeyType: 'ec' },
    { keyType: 'ec-p384', hash: 'sha384', asymmetricKeyType: 'ec' },
    { keyType: 'rsa', hash: 'sha256', asymmetricKeyType: 'rsa' },
    { keyType: 'ed25519', hash: null, asymmetricKeyType: 'ed25519' },
  ] as const;

  for (const c of cases) {
    it(`issues a ${c.keyType} leaf that parses, verifies a signature and passes the trust store`, async function () {
      const issued = await issueTestCert({
        keyType: c.keyType,
        issuer: 'cn-south',
        agency: 'CN-GD',
      });
      const cert = new X509Certificate(issued.certPem);
      expect(cert.publicKey.asymmetricKeyType).to.equal(c.asymmetricKeyType);
      const data = Buffer.from('casebridge');
      const sig = sign(c.hash, data, issued.key);
      expect(verify(c.hash, data, cert.publicKey, sig)).to.equal(true);
      expect(verify(c.hash, Buffer.from('other'), cert.publicKey, sig)).to.equal(false);
      const store = await testTrustStore();
      expect(store.verifyChain(issued.chain, new Date()).agency).to.equal('CN-GD');
    });
  }

  it('writes O, OU, CN, a positive 16-byte serial, leaf key usage, SKI and AKI', async function () {
    const pki = await getTestPki();
    const issued = await issueTestCert({
      agency: 'VN-LS',
      role: 'officer',
      name: 'Officer 07 VN-LS',
      issuer: 'vn-root',
    });
    const info = parseCertificate(issued.cert.raw);
    expect(issued.cert.subject.split('\n')).to.deep.equal([
      'O=VN-LS',
      'OU=officer',
      'CN=Officer 07 VN-LS',
    ]);
    expect(issued.serialHex).to.equal(info.serialHex);
    expect(info.serialHex.length).to.be.within(29, 32);
    expect(issued.cert.ca).to.equal(false);
    expect([...info.keyUsage!]).to.deep.equal([KEY_USAGE.digitalSignature]);
    expect(info.extKeyUsage).to.deep.equal([OID.clientAuth]);
    expect(info.extensions.has(OID.subjectAltName)).to.equal(false);
    const ca = parseCertificate(new X509Certificate(pki.text('ca/vn-root.crt.pem')).raw);
    const aki = info.extensions.get(OID.authorityKeyIdentifier)!.value;
    expect(aki.subarray(aki.length - 20).equals(ca.subjectKeyId!)).to.equal(true);
    expect(info.subjectKeyId).to.have.length(20);
  });

  it('gives the gateway serverAuth + clientAuth and SAN localhost / 127.0.0.1', async function () {
    const pki = await getTestPki();
    const [gw] = parsePemChain(pki.text('gateway/gateway.crt.pem'));
    expect(gw!.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1');
    expect(gw!.checkHost('localhost')).to.equal('localhost');
    expect(gw!.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(parseCertificate(gw!.raw).extKeyUsage).to.deep.equal([OID.serverAuth, OID.clientAuth]);
  });

  it('makes CA certificates with CA:true, keyCertSign + cRLSign; chainPem excludes the root', function () {
    const root = createRootCa({ name: 'Test Root', country: 'VN', keyType: 'rsa' });
    const inter = createIntermediateCa({
      caCert: root.certPem,
      caKey: root.keyPem,
      name: 'Test Inter',
      keyType: 'ed25519',
    });
    for (const pem of [root.certPem, inter.certPem]) {
      const info = parseCertificate(new X509Certificate(pem).raw);
      expect(info.basicConstraints?.ca).to.equal(true);
      expect([...info.keyUsage!].sort()).to.deep.equal([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]);
    }
    expect(
      parseCertificate(new X509Certificate(inter.certPem).raw).basicConstraints?.pathLen,
    ).to.equal(0);
    expect(parsePemChain(inter.chainPem)).to.have.length(1);
    const leaf = issueCertificate({
      caCert: inter.certPem,
      caKey: inter.keyPem,
      agency: 'VN-CB',
      role: 'system',
      name: 's',
    });
    const chain = parsePemChain(leaf.chainPem);
    expect(chain).to.have.length(2);
    expect(chain[0]!.checkIssued(chain[1]!)).to.equal(true);
    expect(chain[0]!.verify(chain[1]!.publicKey)).to.equal(true);
    expect(chain[1]!.verify(new X509Certificate(root.certPem).publicKey)).to.equal(true);
  });

  it('takes notBefore / notAfter as given, past 2049 too (GeneralizedTime)', function () {
    const root = createRootCa({
      name: 'Long Root',
      notBefore: new Date('2024-01-01T00:00:00Z'),
      notAfter: new Date('2060-06-30T12:00:00Z'),
    });
    const info = parseCertificate(new X509Certificate(root.certPem).raw);
    expect(info.notBefore.toISOString()).to.equal('2024-01-01T00:00:00.000Z');
    expect(info.notAfter.toISOString()).to.equal('2060-06-30T12:00:00.000Z');
  });

  it('refuses a CA key that does not match the CA certificate', async function () {
    const pki = await getTestPki();
    expect(() =>
      issueCertificate({
        caCert: pki.text('ca/cn-root.crt.pem'),
        caKey: pki.text('ca/vn-root.key.pem'),
        agency: 'CN-GX-CZ',
        role: 'system',
        name: 'x',
      }),
    )
      .to.throw()
      .with.property('failure', 'malformed');
  });

  (hasOpenssl ? it : it.skip)(
    'interoperates with openssl: verify through the intermediate, CRL check, crl -verify',
    async function () {
      const pki = await getTestPki();
      const dir = mkdtempSync(join(tmpdir(), 'casebridge-openssl-'));
      try {
        const leaf = await issueTestCert({
          issuer: 'cn-south',
          agency: 'MO-PJ',
          keyType: 'ed25519',
        });
        const now = new Date();
        const crl = createCrl({
          caCert: pki.text('ca/cn-south.crt.pem'),
          caKey: pki.text('ca/cn-south.key.pem'),
          revoked: [{ serialHex: leaf.serialHex, at: now }],
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + 86_400_000),
        });
        const f = (name: string, text: string): string => {
          writeFileSync(join(dir, name), text);
          return join(dir, name);
        };
        const anchors = f('trust.pem', pki.text('trust.pem'));
        const inter = f('inter.pem', pki.text('ca/cn-south.crt.pem'));
        const gd = f('gd.pem', pki.text('agencies/CN-GD/officer.crt.pem'));
        const revoked = f('revoked.pem', leaf.certPem);

        const ok = spawnSync(
          'openssl',
          ['verify', '-CAfile', anchors, '-untrusted', inter, '-purpose', 'sslclient', gd],
          { encoding: 'utf8' },
        );
        expect(ok.status, ok.stderr + ok.stdout).to.equal(0);
        const gw = f('gw.pem', pki.text('gateway/gateway.crt.pem'));
        expect(
          spawnSync('openssl', ['verify', '-CAfile', anchors, '-purpose', 'sslserver', gw]).status,
        ).to.equal(0);

        // The new cn-south CRL plus the CN root's (empty) one, the first block of crl.pem.
        const rootCrl =
          pki.text('crl.pem').split('-----END X509 CRL-----\n')[0] + '-----END X509 CRL-----\n';
        const onlyNew = f('only-new.pem', crl + rootCrl);
        const rv = spawnSync(
          'openssl',
          [
            'verify',
            '-crl_check_all',
            '-CRLfile',
            onlyNew,
            '-CAfile',
            anchors,
            '-untrusted',
            inter,
            revoked,
          ],
          { encoding: 'utf8' },
        );
        expect(rv.status).to.not.equal(0);
        expect(rv.stdout + rv.stderr).to.match(/revoked/i);
        const good = spawnSync(
          'openssl',
          [
            'verify',
            '-crl_check_all',
            '-CRLfile',
            onlyNew,
            '-CAfile',
            anchors,
            '-untrusted',
            inter,
            gd,
          ],
          { encoding: 'utf8' },
        );
        expect(good.status, good.stderr + good.stdout).to.equal(0);

        const crlFile = f('one.pem', crl);
        const v = spawnSync(
          'openssl',
          ['crl', '-in', crlFile, '-noout', '-verify', '-CAfile', inter],
          { encoding: 'utf8' },
        );
        expect(v.status).to.equal(0);
        expect(v.stdout + v.stderr).to.match(/verify OK/);
        const text = execFileSync('openssl', ['crl', '-in', crlFile, '-noout', '-text'], {
          encoding: 'utf8',
        });
        expect(text.toUpperCase()).to.include(leaf.serialHex.toUpperCase());
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
