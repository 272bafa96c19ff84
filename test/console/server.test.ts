/**
 * The console's server side (protocol §10): served under /console behind the same
 * mutual TLS, with a strict Content-Security-Policy, and no state-changing call
 * from a browser without same-origin markers and the session's token.
 */
import { request } from 'node:https';
import { expect } from 'chai';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with extra headers (the shared helper sends none). */
async function send(
  t: TestGateway,
  who: Identity,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<Reply> {
  const pki = await getTestPki();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, t.gw.url),
      {
        method,
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
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const code = (r: Reply) => (JSON.parse(r.body) as { code: string }).code;

describe('console server side (protocol §10)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let bOfficer: Identity;
  let id: string;

  before(async function () {
    t = await startTestGateway();
    [aSys, bOfficer] = await Promise.all([
      identity('CN-GX-CZ', 'system'),
      identity('VN-LS', 'officer'),
    ]);
    const env = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(env, aSys))).status).to.equal(202);
    id = env.id;
    await eventually(
      async () => (await t.gw.store.getMessage(id))?.status === 'delivered',
      10_000,
      'delivery',
    );
  });
  after(async () => t?.stop());

  it('serves the page and its assets with a strict CSP and the other security headers', async function () {
    for (const path of ['/console', '/console/app.js', '/console/app.css']) {
      const res = await call(t.gw, bOfficer, 'GET', path);
      expect(res.status, path).to.equal(200);
      const csp = String(res.headers['content-security-policy']);
      expect(csp).to.contain("default-src 'self'");
      expect(csp).to.contain("script-src 'self'");
      expect(csp).to.contain("style-src 'self'");
      expect(csp).to.contain("frame-ancestors 'none'");
      expect(csp).to.contain("object-src 'none'");
      expect(csp).to.contain("require-trusted-types-for 'script'");
      expect(csp).to.not.contain('unsafe-inline');
      expect(csp).to.not.contain('unsafe-eval');
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['x-frame-options']).to.equal('DENY');
      expect(res.headers['referrer-policy']).to.equal('no-referrer');
      expect(res.headers['cross-origin-opener-policy']).to.equal('same-origin');
    }
    const page = await call(t.gw, bOfficer, 'GET', '/console');
    expect(page.text).to.not.match(/<script(?![^>]*\bsrc=)/);
    expect(page.text).to.not.match(/<style|style=/);
    expect(page.text).to.not.match(/(src|href)="(https?:)?\/\//);
  });

  it('is behind the same mutual TLS as the API', async function () {
    const res = await call(t.gw, undefined, 'GET', '/console');
    expect(res.status).to.equal(401);
    expect(res.json()['code']).to.equal('CLIENT_CERT_REQUIRED');
  });

  it('gives the page its session and the configured trust anchors', async function () {
    const s = (await call(t.gw, bOfficer, 'GET', '/console/api/session')).json();
    expect(s).to.include({ agency: 'VN-LS', role: 'officer', gatewayId: 'GW-DEMO' });
    expect(s['csrf']).to.be.a('string').with.length.greaterThan(20);
    const other = (await call(t.gw, aSys, 'GET', '/console/api/session')).json();
    expect(other['csrf']).to.not.equal(s['csrf']);
    const trust = (await call(t.gw, bOfficer, 'GET', '/console/api/trust')).json<{
      anchors: string[];
      gateway: string[];
    }>();
    const pki = await getTestPki();
    expect(trust.anchors.join('')).to.contain(pki.text('ca/vn-root.crt.pem').split('\n')[1]!);
    expect(trust.gateway[0]).to.contain(pki.text('gateway/gateway.crt.pem').split('\n')[1]!);
  });

  it('refuses a state-changing browser request from another site, or without the token', async function () {
    const origin = new URL(t.gw.url).origin.replace('127.0.0.1', 'localhost');
    const host = new URL(t.gw.url).host;
    const own = `https://${host}`;
    const token = (await call(t.gw, bOfficer, 'GET', '/console/api/session')).json()[
      'csrf'
    ] as string;
    const claim = `/v1/messages/${id}/claim`;

    const crossSite = await send(t, bOfficer, 'POST', claim, {
      'sec-fetch-site': 'cross-site',
      'x-casebridge-csrf': token,
    });
    expect(crossSite.status).to.equal(403);
    expect(code(crossSite)).to.equal('CROSS_SITE_REFUSED');
    const foreign = await send(t, bOfficer, 'POST', claim, {
      origin: 'https://evil.example',
      'x-casebridge-csrf': token,
    });
    expect(code(foreign)).to.equal('CROSS_SITE_REFUSED');
    const otherName = await send(t, bOfficer, 'POST', claim, {
      origin,
      'x-casebridge-csrf': token,
    });
    expect(code(otherName)).to.equal('CROSS_SITE_REFUSED');
    const noToken = await send(t, bOfficer, 'POST', claim, {
      origin: own,
      'sec-fetch-site': 'same-origin',
    });
    expect(code(noToken)).to.equal('CROSS_SITE_REFUSED');
    const sysToken = (await call(t.gw, aSys, 'GET', '/console/api/session')).json()[
      'csrf'
    ] as string;
    const wrongToken = await send(t, bOfficer, 'POST', claim, {
      origin: own,
      'x-casebridge-csrf': sysToken,
    });
    expect(code(wrongToken)).to.equal('CROSS_SITE_REFUSED');
    // A cross-site submission is refused app-wide, not only under /console.
    const submitCross = await send(t, aSys, 'POST', '/v1/messages', {
      'sec-fetch-site': 'same-site',
      'content-type': 'application/jose',
    });
    expect(code(submitCross)).to.equal('CROSS_SITE_REFUSED');
    expect((await t.gw.store.getMessage(id))?.status).to.equal('delivered');

    const ok = await send(t, bOfficer, 'POST', claim, {
      origin: own,
      'sec-fetch-site': 'same-origin',
      'x-casebridge-csrf': token,
    });
    expect(ok.status, ok.body).to.equal(200);
    expect((await t.gw.store.getMessage(id))?.status).to.equal('claimed');
    // Agency systems are not browsers: no Origin, no Sec-Fetch-*, no token, as before.
    const release = await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/release`);
    expect(release.status).to.equal(200);
  });
});
