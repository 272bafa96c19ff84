/**
 * protocol §12 body slots under keep-alive load. The gateway runs in a process of
 * its own: a client in the same process could only send its next request after
 * the gateway's event loop had moved on, which hides a slot held past its answer.
 */
import { expect } from 'chai';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { freePort, identity, releaseTestEnv, signAs, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { GatewayProcess, keepAliveClient } from '../faults/support.js';

const CLIENTS = 16;
const PER_CLIENT = 100;

describe('body slots under keep-alive load (protocol §12)', function () {
  this.timeout(120_000);
  let gwp: GatewayProcess | undefined;
  let env: Record<string, string> | undefined;

  after(async () => {
    await gwp?.term(10_000).catch(() => {});
    if (env) await releaseTestEnv(env);
  });

  it('frees a slot with its answer: as many keep-alive clients as CASEBRIDGE_MAX_BODIES, each sending again at once, never see 503', async () => {
    const port = await freePort();
    env = await testEnv({
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(await freePort()),
      CASEBRIDGE_MAX_BODIES: String(CLIENTS),
      CASEBRIDGE_RATE_PER_MIN: '1000000',
    });
    gwp = new GatewayProcess(env);
    await gwp.start();
    const sys = await identity('CN-GX-CZ', 'system');
    const pki = await getTestPki();
    const c = keepAliveClient(`https://127.0.0.1:${port}`, sys, pki.files['trust.pem']!, CLIENTS);
    const bodies = Array.from({ length: CLIENTS * PER_CLIENT }, () =>
      signAs(sampleEnvelope('evidence.request', { from: 'CN-GX-CZ', to: 'VN-LS' }), sys),
    );
    const refused: string[] = [];
    let accepted = 0;
    try {
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, w) => {
          for (let i = w; i < bodies.length; i += CLIENTS) {
            const r = await c.submit(bodies[i]!);
            if (r.status === 202) accepted++;
            else refused.push(`${r.status} ${r.text.slice(0, 120)}`);
          }
        }),
      );
    } finally {
      c.close();
    }
    expect(refused.slice(0, 3), `${refused.length} of ${bodies.length} refused`).to.deep.equal([]);
    expect(accepted).to.equal(bodies.length);
  });
});
