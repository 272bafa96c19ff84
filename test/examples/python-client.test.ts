/**
 * examples/python: a client written from docs/protocol.md alone (cryptography +
 * requests), run against a live gateway: all five message types, a re-signed replay,
 * and every receipt verified against the pinned gateway certificate.
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { MESSAGE_TYPES, type Envelope } from '../../src/envelope/types.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { startTestGateway, writeTemp, type TestGateway } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const PYTHON = '/usr/bin/python3';
const EXAMPLE = fileURLToPath(new URL('../../../examples/python/', import.meta.url));
const A = 'CN-GX-CZ';
const B = 'VN-LS';

interface DemoOutput {
  submitted: { type: string; status: number; code: string | null; receiptOk: boolean }[];
  replay: { status: number; receipt: string };
  inbox: string[];
  forged: string;
}

describe('examples/python client against a live gateway', function () {
  let t: TestGateway;

  before(function () {
    const probe = spawnSync(PYTHON, ['-c', 'import cryptography, requests'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(`      skipped: ${PYTHON} lacks cryptography or requests (CI installs them)`);
      this.skip();
    }
  });
  after(async () => t?.stop());

  it('submits the five message types, replays one re-signed, verifies the receipts', async function () {
    t = await startTestGateway();
    const pki = await getTestPki();
    const request = sampleEnvelope('evidence.request', { from: A, to: B });
    const envelopes: Envelope[] = [
      request,
      ...MESSAGE_TYPES.filter((type) => type !== 'evidence.request').map((type) =>
        sampleEnvelope(type, { from: A, to: B, inReplyTo: request.id }),
      ),
    ];
    const args = [
      `${EXAMPLE}demo.py`,
      t.gw.url.replace('127.0.0.1', 'localhost'),
      pki.path('trust.pem'),
      pki.path(`agencies/${A}/system.crt.pem`),
      pki.path(`agencies/${A}/system.key.pem`),
      pki.path(`agencies/${B}/officer.crt.pem`),
      pki.path(`agencies/${B}/officer.key.pem`),
      pki.path('gateway/gateway.crt.pem'),
      writeTemp('envelopes.json', JSON.stringify(envelopes)),
    ];
    // Asynchronous: the gateway answers from this process.
    const { stdout, stderr, code } = await new Promise<{
      stdout: string;
      stderr: string;
      code: number;
    }>((resolve) =>
      execFile(PYTHON, args, { cwd: EXAMPLE, encoding: 'utf8' }, (err, so, se) =>
        resolve({ stdout: so, stderr: se, code: err ? Number(err.code ?? 1) : 0 }),
      ),
    );
    expect(code, stderr).to.equal(0);
    const out = JSON.parse(stdout) as DemoOutput;
    expect(out.submitted.map((s) => [s.type, s.status, s.receiptOk])).to.deep.equal(
      envelopes.map((e) => [e.type, 202, true]),
    );
    expect(out.replay.status).to.equal(200);
    const original = (await t.gw.store.getMessage(request.id))!;
    expect(out.replay.receipt).to.equal(
      (JSON.parse(original.response) as { receipt: string }).receipt,
    );
    expect(out.forged).to.equal('refused');
    expect(out.inbox).to.include(request.id);
  });
});
