import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { expect } from 'chai';
import forge from 'node-forge';
import {
  DEV_AGENCIES,
  DEV_PKCS12_PASSWORD,
  devPkcs12Files,
  parsePemChain,
} from '../../src/pki/index.js';
import { startTestGateway } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const { asn1, pkcs12, pki } = forge;

interface Opened {
  certs: X509Certificate[];
  keyDer: Buffer;
  friendlyNames: string[];
}

/** Opens a PFX with node-forge (an independent reader), MAC checked. */
function open(p12: Buffer, password: string): Opened {
  const pfx = pkcs12.pkcs12FromAsn1(asn1.fromDer(p12.toString('binary')), true, password);
  const der = (node: forge.asn1.Asn1) => Buffer.from(asn1.toDer(node).getBytes(), 'binary');
  const certBags = pfx.getBags({ bagType: pki.oids.certBag! })[pki.oids.certBag!] ?? [];
  const keyBags =
    pfx.getBags({ bagType: pki.oids.pkcs8ShroudedKeyBag! })[pki.oids.pkcs8ShroudedKeyBag!] ?? [];
  expect(keyBags).to.have.length(1);
  // EC keys and certificates are beyond forge's own key types: it hands back their ASN.1.
  const asn1Of = (bag: forge.pkcs12.Bag) => (bag as unknown as { asn1: forge.asn1.Asn1 }).asn1;
  return {
    certs: certBags.map((b) => new X509Certificate(der(asn1Of(b)))),
    keyDer: der(asn1Of(keyBags[0]!)),
    friendlyNames: [...certBags, ...keyBags].flatMap((b) => b.attributes['friendlyName'] ?? []),
  };
}

describe('pki/pkcs12: the dev .p12 files (protocol §10)', function () {
  let files: Record<string, Buffer>;
  let pem: Record<string, string>;
  before(async function () {
    const testPki = await getTestPki();
    pem = testPki.files;
    files = devPkcs12Files(pem);
  });

  it('writes one per agency certificate: system, officer and auditor of every agency', function () {
    const expected = DEV_AGENCIES.flatMap((a) =>
      ['system', 'officer', 'auditor'].map((r) => `agencies/${a.id}/${r}.p12`),
    );
    expect(Object.keys(files).sort()).to.deep.equal(expected.sort());
  });

  it('opens with the password and holds the right certificate chain and key', function () {
    for (const [rel, p12] of Object.entries(files)) {
      const base = rel.slice(0, -'.p12'.length);
      const chain = parsePemChain(pem[`${base}.crt.pem`]!);
      const opened = open(p12, DEV_PKCS12_PASSWORD);
      expect(
        opened.certs.map((c) => c.fingerprint256),
        rel,
      ).to.deep.equal(chain.map((c) => c.fingerprint256));
      const key = createPrivateKey({ key: opened.keyDer, format: 'der', type: 'pkcs8' });
      const expectedKey = createPrivateKey(pem[`${base}.key.pem`]!);
      expect(
        key
          .export({ type: 'pkcs8', format: 'der' })
          .equals(expectedKey.export({ type: 'pkcs8', format: 'der' })),
        rel,
      ).to.equal(true);
      // The key is the certificate's key.
      const spki = (k: ReturnType<typeof createPublicKey>) =>
        k.export({ type: 'spki', format: 'der' });
      expect(spki(createPublicKey(key)).equals(spki(chain[0]!.publicKey)), rel).to.equal(true);
      const [agency, role] = base.split('/').slice(1);
      expect(opened.friendlyNames).to.include(`casebridge dev ${role} ${agency}`);
    }
  });

  it('works as a TLS client identity (OpenSSL through node:tls) against the gateway', async function () {
    const t = await startTestGateway();
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          new URL('/v1/inbox', t.gw.url),
          {
            agent: false,
            ca: pem['trust.pem'],
            servername: 'localhost',
            pfx: files['agencies/VN-LS/officer.p12'],
            passphrase: DEV_PKCS12_PASSWORD,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).to.equal(200);
    } finally {
      await t.stop();
    }
  });

  it('refuses a wrong password (MAC and key encryption)', function () {
    const p12 = files['agencies/VN-LS/officer.p12']!;
    expect(() => open(p12, 'not-the-password')).to.throw();
  });
});
