import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { verifyCompactJws } from '../../src/envelope/jws.js';
import { ALLOWED_ALGS, type AllowedAlg } from '../../src/envelope/types.js';

function keyPair(alg: AllowedAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (alg) {
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ES384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'PS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'EdDSA':
      return generateKeyPairSync('ed25519');
  }
}

async function joseAccepts(jws: string, key: KeyObject, alg: AllowedAlg): Promise<boolean> {
  try {
    await compactVerify(jws, key, { algorithms: [alg] });
    return true;
  } catch {
    return false;
  }
}

/** Changes one base64url character of part `part` (0 header, 1 payload, 2 signature). */
function tamper(jws: string, part: number): string {
  const parts = jws.split('.');
  const p = parts[part] as string;
  const i = Math.floor(p.length / 2);
  parts[part] = p.slice(0, i) + (p[i] === 'A' ? 'B' : 'A') + p.slice(i + 1);
  return parts.join('.');
}

describe('audit/signatures: JWS verification agrees with jose', function () {
  this.timeout(60_000);
  for (const alg of ALLOWED_ALGS) {
    it(`${alg}: valid, tampered and wrong-key tokens`, async () => {
      const { privateKey, publicKey } = keyPair(alg);
      const payload = Buffer.from(JSON.stringify({ hello: 'world', alg }));
      const jws = await new CompactSign(payload)
        .setProtectedHeader({ alg, typ: 'casebridge-message+jws' })
        .sign(privateKey);
      assert.deepEqual(Buffer.from(verifyCompactJws(jws, publicKey, alg) ?? []), payload);
      assert.equal(await joseAccepts(jws, publicKey, alg), true);
      for (const part of [0, 1, 2]) {
        const bad = tamper(jws, part);
        assert.equal(verifyCompactJws(bad, publicKey, alg), undefined, `part ${part}`);
        assert.equal(await joseAccepts(bad, publicKey, alg), false);
      }
      const other = keyPair(alg).publicKey;
      assert.equal(verifyCompactJws(jws, other, alg), undefined);
      assert.equal(await joseAccepts(jws, other, alg), false);
      // A key of another type never fits the alg.
      const mismatched = alg === 'EdDSA' ? keyPair('ES256').publicKey : keyPair('EdDSA').publicKey;
      assert.equal(verifyCompactJws(jws, mismatched, alg), undefined);
    });
  }

  it('refuses RSA keys below 2048 bits and malformed compact forms', async () => {
    // jose will not sign with a 1024-bit key, so sign by hand.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const input = `${Buffer.from('{"alg":"PS256"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}`;
    const sig = sign('sha256', Buffer.from(input), {
      key: small.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    const weak = `${input}.${sig.toString('base64url')}`;
    assert.equal(
      verify(
        'sha256',
        Buffer.from(input),
        { key: small.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        sig,
      ),
      true,
    );
    assert.equal(verifyCompactJws(weak, small.publicKey, 'PS256'), undefined);
    const { privateKey, publicKey } = keyPair('EdDSA');
    const good = await new CompactSign(Buffer.from('{}'))
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(privateKey);
    assert.equal(verifyCompactJws(good + '.x', publicKey, 'EdDSA'), undefined);
    assert.equal(verifyCompactJws(good.replace('.', '.+'), publicKey, 'EdDSA'), undefined);
  });
});
