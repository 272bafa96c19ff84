/**
 * `casebridge submit` with several files or a directory (protocol §3.1, §7): one
 * batch request, one line per file in order, exit 1 when any was refused.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { identity, signAs, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const A = 'CN-GX-CZ';
const B = 'VN-LS';

interface Line {
  file: string;
  status: number;
  body?: { id: string; logIndex: number; receipt: string };
  problem?: { code: string };
}

function run(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [MAIN, ...args], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const linesOf = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);

describe('casebridge submit with several files or a directory (protocol §3.1, §7)', function () {
  this.timeout(60_000);
  let t: TestGateway;
  let dir: string;
  let conn: string[];
  let batches = 0;

  before(async function () {
    t = await startTestGateway();
    const pki = await getTestPki();
    dir = mkdtempSync(join(tmpdir(), 'casebridge-cli-submit-'));
    conn = [
      '--cert',
      pki.path(`agencies/${A}/system.crt.pem`),
      '--key',
      pki.path(`agencies/${A}/system.key.pem`),
      '--ca',
      pki.path('trust.pem'),
      '--url',
      t.gw.url.replace('127.0.0.1', 'localhost'),
    ];
    t.gw.metrics.requests.reset();
  });
  after(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function batchRequests(): Promise<number> {
    const m = await t.gw.metrics.requests.get();
    return m.values
      .filter((v) => v.labels['route'] === '/v1/messages/batch')
      .reduce((a, v) => a + v.value, 0);
  }

  it('sends a directory in one batch, prints a receipt or problem per file in name order, exits 1 if any was refused', async function () {
    const sys = await identity(A, 'system');
    const inbox = join(dir, 'outbox');
    mkdirSync(inbox);
    const envs = [
      sampleEnvelope('evidence.request', { from: A, to: B }),
      sampleEnvelope('evidence.request', { from: A, to: B }),
    ];
    writeFileSync(join(inbox, '01-request.json'), JSON.stringify(envs[0]));
    // A JWS signed elsewhere is sent as it is.
    writeFileSync(join(inbox, '02-signed.jws'), signAs(envs[1]!, sys) + '\n');
    // Sent by this agency in another's name: refused on its own line.
    writeFileSync(
      join(inbox, '03-wrong-sender.json'),
      JSON.stringify(sampleEnvelope('evidence.request', { from: B, to: A })),
    );
    writeFileSync(join(inbox, 'notes.txt'), 'not a message');
    writeFileSync(join(inbox, '.hidden.json'), '{}');

    const r = await run(['submit', inbox, ...conn]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include('1 of 3 messages refused');
    const got = linesOf(r.stdout);
    expect(got.map((l) => [l.file, l.status])).to.deep.equal([
      [join(inbox, '01-request.json'), 202],
      [join(inbox, '02-signed.jws'), 202],
      [join(inbox, '03-wrong-sender.json'), 403],
    ]);
    expect(got[2]!.problem!.code).to.equal('SENDER_MISMATCH');
    expect(got.slice(0, 2).map((l) => l.body!.id)).to.deep.equal(envs.map((e) => e.id));
    for (const l of got.slice(0, 2)) expect(l.body!.receipt).to.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const e of envs) expect(await t.gw.store.getMessage(e.id)).to.not.equal(undefined);
    expect(await batchRequests()).to.equal(batches + 1);
    batches++;

    // Several files: the same two again are replays with their original receipts.
    const again = await run([
      'submit',
      join(inbox, '01-request.json'),
      join(inbox, '02-signed.jws'),
      ...conn,
    ]);
    expect(again.code, again.stderr).to.equal(0);
    const replayed = linesOf(again.stdout);
    expect(replayed.map((l) => l.status)).to.deep.equal([200, 200]);
    expect(replayed.map((l) => l.body!.receipt)).to.deep.equal(
      got.slice(0, 2).map((l) => l.body!.receipt),
    );
    expect(await batchRequests()).to.equal(batches + 1);
    batches++;
  });

  it('refuses a directory without messages as a usage error, and --attach with several files', async function () {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const r = await run(['submit', empty, ...conn]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('holds no .json or .jws file');
    const f = join(dir, 'one.json');
    writeFileSync(f, JSON.stringify(sampleEnvelope('evidence.transfer', { from: A, to: B })));
    const att = await run(['submit', f, f, '--attach', f, ...conn]);
    expect(att.code).to.equal(2);
    expect(att.stderr).to.include('--attach goes with one envelope file');
  });
});
