import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { registerPkiCommands } from '../../src/cli/pki-commands.js';
import { CliError } from '../../src/cli/exit.js';
import { PkiError, TrustStore, parseCrlPem, parsePemChain } from '../../src/pki/index.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `casebridge <args>` in-process, capturing stdout/stderr and the exit code main.ts would use. */
async function run(...args: string[]): Promise<Run> {
  const program = new Command()
    .name('casebridge')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerPkiCommands(program);
  let out = '';
  let err = '';
  const so = process.stdout.write.bind(process.stdout);
  const se = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  let code = 0;
  try {
    await program.parseAsync(['node', 'casebridge', ...args]);
  } catch (e) {
    if (e instanceof CliError) code = e.exitCode;
    else if (e instanceof CommanderError) code = 2;
    else throw e;
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
  }
  return { code, out, err };
}

describe('cli/pki-commands', function () {
  let dir: string;
  let certs: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-cli-'));
    certs = join(dir, 'certs');
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('init-dev writes the PKI, refuses to overwrite, --if-missing skips, --force replaces', async function () {
    const first = await run('init-dev', '--out', certs);
    expect(first.code).to.equal(0);
    expect(first.out).to.include('registry.json');
    expect(existsSync(join(certs, 'agencies/VN-CB/auditor.key.pem'))).to.equal(true);
    expect(statSync(join(certs, 'ca/cn-root.key.pem')).mode & 0o777).to.equal(0o600);
    // protocol §10: a browser-importable .p12 per agency certificate, private like a key.
    expect(statSync(join(certs, 'agencies/VN-LS/officer.p12')).mode & 0o777).to.equal(0o600);
    const rootBefore = readFileSync(join(certs, 'ca/cn-root.crt.pem'), 'utf8');

    expect((await run('init-dev', '--out', certs)).code).to.equal(2);
    const skipped = await run('init-dev', '--out', certs, '--if-missing');
    expect(skipped.code).to.equal(0);
    expect(skipped.err).to.not.equal('');
    expect(readFileSync(join(certs, 'ca/cn-root.crt.pem'), 'utf8')).to.equal(rootBefore);

    expect((await run('init-dev', '--out', certs, '--force')).code).to.equal(0);
    expect(readFileSync(join(certs, 'ca/cn-root.crt.pem'), 'utf8')).to.not.equal(rootBefore);
  });

  it('pki issue writes <name>.crt.pem (with chain) and a 0600 key; bad input exits 2', async function () {
    const out = join(dir, 'issued');
    const r = await run(
      'pki',
      'issue',
      '--ca-cert',
      join(certs, 'ca/cn-south.crt.pem'),
      '--ca-key',
      join(certs, 'ca/cn-south.key.pem'),
      '--agency',
      'MO-PJ',
      '--role',
      'officer',
      '--name',
      'Officer 02 MO-PJ',
      '--key-type',
      'ec-p384',
      '--days',
      '30',
      '--out',
      out,
    );
    expect(r.code, r.err).to.equal(0);
    const chain = parsePemChain(readFileSync(join(out, 'officer-02-mo-pj.crt.pem'), 'utf8'));
    expect(chain).to.have.length(2);
    expect(statSync(join(out, 'officer-02-mo-pj.key.pem')).mode & 0o777).to.equal(0o600);
    const store = new TrustStore({ anchorsPem: readFileSync(join(certs, 'trust.pem'), 'utf8') });
    expect(store.verifyChain(chain, new Date()).name).to.equal('Officer 02 MO-PJ');

    const common = [
      '--ca-cert',
      join(certs, 'ca/cn-root.crt.pem'),
      '--ca-key',
      join(certs, 'ca/cn-root.key.pem'),
      '--out',
      out,
    ];
    expect(
      (
        await run(
          'pki',
          'issue',
          ...common,
          '--agency',
          'CN-GX-CZ',
          '--role',
          'boss',
          '--name',
          'x',
        )
      ).code,
    ).to.equal(2);
    expect(
      (await run('pki', 'issue', ...common, '--agency', 'cn', '--role', 'system', '--name', 'x'))
        .code,
    ).to.equal(2);
    expect(
      (
        await run(
          'pki',
          'issue',
          ...common,
          '--agency',
          'CN-GX-CZ',
          '--role',
          'system',
          '--key-type',
          'dsa',
        )
      ).code,
    ).to.equal(2);
    expect((await run('pki', 'issue', ...common, '--role', 'system')).code).to.equal(2);
    const wrongKey = [
      '--ca-cert',
      join(certs, 'ca/cn-root.crt.pem'),
      '--ca-key',
      join(certs, 'ca/vn-root.key.pem'),
      '--out',
      out,
    ];
    expect(
      (await run('pki', 'issue', ...wrongKey, '--agency', 'CN-GX-CZ', '--role', 'system')).code,
    ).to.equal(2);
    expect(
      (
        await run(
          'pki',
          'issue',
          ...common,
          '--ca-cert',
          join(dir, 'missing.pem'),
          '--agency',
          'CN-GX-CZ',
          '--role',
          'system',
        )
      ).code,
    ).to.equal(2);
  });

  it('pki revoke adds the serial to its CA block, keeps the others, bumps thisUpdate and number', async function () {
    const victim = join(certs, 'agencies/VN-LS/officer.crt.pem');
    const ca = [
      '--ca-cert',
      join(certs, 'ca/vn-root.crt.pem'),
      '--ca-key',
      join(certs, 'ca/vn-root.key.pem'),
    ];
    const out = join(dir, 'crl.pem');
    const r = await run(
      'pki',
      'revoke',
      ...ca,
      '--cert',
      victim,
      '--crl',
      join(certs, 'crl.pem'),
      '--out',
      out,
    );
    expect(r.code, r.err).to.equal(0);
    const before = parseCrlPem(readFileSync(join(certs, 'crl.pem'), 'utf8'));
    const after = parseCrlPem(readFileSync(out, 'utf8'));
    expect(after).to.have.length(3);
    const serial = parsePemChain(readFileSync(victim, 'utf8'))[0]!
      .serialNumber.toLowerCase()
      .replace(/^0+/, '');
    const vnIndex = after.findIndex((c) => c.revoked.length > 0);
    expect(after[vnIndex]!.revoked.map((e) => e.serialHex)).to.deep.equal([serial]);
    expect(after[vnIndex]!.thisUpdate.getTime()).to.be.greaterThan(
      before[vnIndex]!.thisUpdate.getTime(),
    );
    expect(after[vnIndex]!.crlNumber! > before[vnIndex]!.crlNumber!).to.equal(true);
    for (const i of [0, 1, 2].filter((i) => i !== vnIndex))
      expect(after[i]!.der.equals(before[i]!.der)).to.equal(true);

    const store = new TrustStore({
      anchorsPem: readFileSync(join(certs, 'trust.pem'), 'utf8'),
      crlPem: readFileSync(out, 'utf8'),
    });
    expect(() => store.verifyChain(parsePemChain(readFileSync(victim, 'utf8')), new Date()))
      .to.throw(PkiError)
      .with.property('failure', 'revoked');

    // A second revocation, reading --out as the starting point.
    const second = join(certs, 'agencies/VN-CB/system.crt.pem');
    expect((await run('pki', 'revoke', ...ca, '--cert', second, '--out', out)).code).to.equal(0);
    const again = parseCrlPem(readFileSync(out, 'utf8'));
    expect(again[vnIndex]!.revoked).to.have.length(2);
    expect(again[vnIndex]!.crlNumber! > after[vnIndex]!.crlNumber!).to.equal(true);

    // Not issued by that CA.
    const cnCert = join(certs, 'agencies/CN-GX-CZ/system.crt.pem');
    expect((await run('pki', 'revoke', ...ca, '--cert', cnCert, '--out', out)).code).to.equal(2);
  });
});
