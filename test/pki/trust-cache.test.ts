import { expect } from 'chai';
import type { X509Certificate } from 'node:crypto';
import { call, identity, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { flood, floodCertificates } from '../helpers/flood.js';
import { issueTestCert, testTrustStore } from '../helpers/pki.js';

describe('trust store caches (no unauthenticated memory growth)', function () {
  describe('over TLS: 1,000 handshakes with fresh 60 KB self-signed certificates', function () {
    let t: TestGateway;
    before(async function () {
      t = await startTestGateway();
    });
    after(async () => t?.stop());

    it('refuses each with 401 and caches nothing of them; the caches stay within their byte bound', async function () {
      // About 10 s on an idle machine; the handshakes are CPU-bound, so allow for a busy one.
      this.timeout(240_000);
      const officer = await identity('CN-GX-CZ', 'officer');
      expect((await call(t.gw, officer, 'GET', '/v1/inbox')).status).to.equal(200);
      const before = t.gw.trust.cacheStats();
      expect(before.paths.entries).to.be.greaterThan(0);

      const certs = floodCertificates();
      expect(certs.bytes).to.be.within(55 * 1024, 70 * 1024);
      const statuses = await flood(t.gw, certs, 1_000, 16);
      expect([...statuses.entries()]).to.deep.equal([[401, 1_000]]);

      const after = t.gw.trust.cacheStats();
      expect(after.paths.entries).to.equal(before.paths.entries);
      expect(after.parsed.entries).to.equal(before.parsed.entries);
      expect(after.paths.bytes).to.be.at.most(after.paths.maxBytes);
      expect(after.parsed.bytes).to.be.at.most(after.parsed.maxBytes);
      // The trusted client is still served from the cache.
      expect((await call(t.gw, officer, 'GET', '/v1/inbox')).status).to.equal(200);
    });
  });

  it('bounds the caches of trusted chains in bytes, evicting the least recently used', async function () {
    const bound = 24 * 1024;
    const trust = await testTrustStore({ cacheBytes: bound });
    const certs = await Promise.all(Array.from({ length: 12 }, () => issueTestCert()));
    let peak = 0;
    for (const c of certs) {
      const chain = trust.chainFromX5c(
        c.chain.map((x: X509Certificate) => x.raw.toString('base64')),
      );
      trust.verifyChain(chain, new Date());
      const s = trust.cacheStats();
      peak = Math.max(peak, s.paths.bytes, s.parsed.bytes);
    }
    const s = trust.cacheStats();
    expect(s.paths.entries).to.be.greaterThan(0);
    expect(s.paths.entries).to.be.lessThan(12);
    expect(peak).to.be.at.most(bound);
  });
});
