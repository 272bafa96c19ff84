import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createCrl, issueCertificate } from '../../src/pki/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { freePort, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { CLI_MAIN, ROOT, runCli } from '../helpers/cli.js';

const MAIN = CLI_MAIN;

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, env);
}

async function waitHealthy(adminPort: number, child: ChildProcess): Promise<void> {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gateway did not become healthy');
}

describe('casebridge CLI (protocol §7)', function () {
  this.timeout(60_000);

  describe('configuration errors', function () {
    it('stops with exit 2 and one line naming the variable', async function () {
      const env = await testEnv();
      for (const [name, value] of [
        ['CASEBRIDGE_PORT', 'eighty'],
        ['CASEBRIDGE_TLS_CERT', '/nonexistent/cert.pem'],
        ['CASEBRIDGE_AMQP_URL', 'http://broker'],
        ['CASEBRIDGE_CLOCK_SKEW_S', '-5'],
      ] as const) {
        const r = cli(['serve'], { ...env, [name]: value });
        expect(r.code, `${name}: ${r.stderr}`).to.equal(2);
        const lines = r.stderr.trim().split('\n');
        expect(lines, r.stderr).to.have.length(1);
        expect(lines[0]).to.include(name);
      }
    });

    it('refuses a log key that is not Ed25519, naming CASEBRIDGE_LOG_KEY', async function () {
      const pki = await getTestPki();
      const env = await testEnv({ CASEBRIDGE_LOG_KEY: pki.path('gateway/gateway.key.pem') });
      const r = cli(['serve'], env);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include('CASEBRIDGE_LOG_KEY');
    });

    it('exits 2 on a usage error', function () {
      expect(cli(['submit']).code).to.equal(2);
      expect(cli(['no-such-command']).code).to.equal(2);
    });
  });

  describe('serve, submit, SIGHUP and SIGTERM', function () {
    let child: ChildProcess;
    let url: string;
    let env: Record<string, string>;
    let crlPath: string;
    let dir: string;

    before(async function () {
      const pki = await getTestPki();
      dir = mkdtempSync(join(tmpdir(), 'casebridge-cli-'));
      crlPath = join(dir, 'crl.pem');
      copyFileSync(pki.path('crl.pem'), crlPath);
      const [port, adminPort] = [await freePort(), await freePort()];
      env = await testEnv({
        CASEBRIDGE_PORT: String(port),
        CASEBRIDGE_ADMIN_PORT: String(adminPort),
        CASEBRIDGE_CRL: crlPath,
        CASEBRIDGE_TRUST: pki.path('trust.pem'),
      });
      url = `https://127.0.0.1:${port}`;
      child = spawn(process.execPath, [MAIN, 'serve'], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: 'pipe',
      });
      await waitHealthy(adminPort, child);
    });
    after(function () {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('signs and submits an envelope, printing the 202 body; a refusal exits 1', async function () {
      const pki = await getTestPki();
      const file = join(dir, 'env.json');
      writeFileSync(file, JSON.stringify(sampleEnvelope('evidence.request')));
      const creds = [
        '--cert',
        pki.path('agencies/CN-GX-CZ/system.crt.pem'),
        '--key',
        pki.path('agencies/CN-GX-CZ/system.key.pem'),
      ];
      const ok = cli(['submit', file, '--url', url, '--ca', pki.path('trust.pem'), ...creds]);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(JSON.parse(ok.stdout)).to.include({ status: 'accepted' });

      const signed = cli(['sign', file, '--fresh', ...creds]);
      expect(signed.code).to.equal(0);
      expect(signed.stdout.trim().split('.')).to.have.length(3);
      const jwsFile = join(dir, 'msg.jws');
      writeFileSync(jwsFile, signed.stdout);
      const again = cli(['submit', jwsFile, '--url', url, '--ca', pki.path('trust.pem'), ...creds]);
      expect(again.code, again.stderr).to.equal(0);

      const refusedFile = join(dir, 'refused.json');
      writeFileSync(
        refusedFile,
        JSON.stringify(sampleEnvelope('evidence.request', { to: 'CN-GD' })),
      );
      const refused = cli([
        'submit',
        refusedFile,
        '--url',
        url,
        '--ca',
        pki.path('trust.pem'),
        ...creds,
      ]);
      expect(refused.code).to.equal(1);
      expect(JSON.parse(refused.stdout)).to.include({ code: 'NOT_PERMITTED' });
      expect(refused.stderr.trim().split('\n')).to.have.length(1);
    });

    it('reloads CRLs on SIGHUP without a restart', async function () {
      const pki = await getTestPki();
      const leaf = issueCertificate({
        caCert: pki.files['ca/cn-root.crt.pem']!,
        caKey: pki.files['ca/cn-root.key.pem']!,
        agency: 'CN-GX-CZ',
        role: 'system',
        name: `to-revoke-${randomUUID()}`,
      });
      const cert = join(dir, 'leaf.crt.pem');
      const key = join(dir, 'leaf.key.pem');
      writeFileSync(cert, leaf.chainPem);
      writeFileSync(key, leaf.keyPem);
      const inbox = () =>
        cli(['inbox', '--url', url, '--ca', pki.path('trust.pem'), '--cert', cert, '--key', key]);
      expect(inbox().code).to.equal(0);

      const revoked = createCrl({
        caCert: pki.files['ca/cn-root.crt.pem']!,
        caKey: pki.files['ca/cn-root.key.pem']!,
        revoked: [{ serialHex: leaf.serialHex, at: new Date() }],
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 86_400_000),
      });
      writeFileSync(crlPath, revoked);
      const pid = child.pid!;
      process.kill(pid, 'SIGHUP');
      const until = Date.now() + 10_000;
      let last = inbox();
      while (last.code === 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        last = inbox();
      }
      expect(last.code).to.equal(1);
      // The one-line reason on stderr names the problem's code.
      expect(last.stderr).to.match(/\b401 CLIENT_CERT_UNTRUSTED\b/);
      expect(child.pid).to.equal(pid);
      expect(child.exitCode).to.equal(null);
    });

    it('keeps the old CRLs when the new file is broken', async function () {
      writeFileSync(crlPath, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
      process.kill(child.pid!, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
      expect(child.exitCode).to.equal(null);
      const pki = await getTestPki();
      const ok = cli([
        'inbox',
        '--url',
        url,
        '--ca',
        pki.path('trust.pem'),
        '--cert',
        pki.path('agencies/VN-LS/officer.crt.pem'),
        '--key',
        pki.path('agencies/VN-LS/officer.key.pem'),
      ]);
      expect(ok.code, ok.stderr).to.equal(0);
    });

    it('stops cleanly on SIGTERM', async function () {
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => resolve(code)),
      );
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    });
  });
});
