/**
 * `casebridge keys rewrap` (docs/operations.md, "Key rotation"): the data key
 * rotated under a stopped gateway's key directory, run as a real process; a
 * gateway on the new key reads every old message, one on the old key refuses to
 * start. Interrupted runs (a simulated crash, a real SIGKILL) finish on a rerun;
 * a file under an unknown key stops the command before anything is written.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import winston from 'winston';
import { startGateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import {
  FileEpochKeys,
  dataKeyPem,
  epochKeyAad,
  readDataKey,
  tempPathOf,
} from '../../src/retention/keys.js';
import { newKey, open, seal } from '../../src/retention/seal.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { call, identity, releaseTestEnv, signAs, submit, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { CLI_MAIN, ROOT, runCli } from '../helpers/cli.js';

const DAY = 86_400_000;
const A = 'CN-GX-CZ';
const MAIN = CLI_MAIN;

function cli(args: string[], env: Record<string, string>) {
  return runCli(args, env, 60_000);
}

const silent = () => winston.createLogger({ silent: true });

/** The key an epoch key file opens with, of those given, by name; undefined for none. */
function keyOf(dir: string, epoch: string, keys: Record<string, Buffer>): string | undefined {
  const sealed = readFileSync(join(dir, `epoch-${epoch}.key`));
  for (const [name, key] of Object.entries(keys)) {
    try {
      open(key, sealed, epochKeyAad(epoch));
      return name;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** Every file of `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f)).toString('hex')]),
  );
}

/** `n` consecutive UTC days from 2001-01-01. */
function days(n: number): string[] {
  const start = Date.UTC(2001, 0, 1);
  return Array.from({ length: n }, (_, i) => new Date(start + i * DAY).toISOString().slice(0, 10));
}

/** A key directory with one epoch key per day under `dataKey`; the epoch keys, by day. */
function keyDirWith(dir: string, dataKey: Buffer, epochs: string[]): Map<string, Buffer> {
  const keys = new FileEpochKeys(dir, dataKey);
  return new Map(epochs.map((e) => [e, Buffer.from(keys.get(e, true)!)]));
}

/** Every epoch key opens with `dataKey` and is the same key as before. */
function expectAllUnder(dir: string, dataKey: Buffer, before: Map<string, Buffer>): void {
  const keys = new FileEpochKeys(dir, dataKey);
  expect(keys.list()).to.deep.equal([...before.keys()]);
  for (const [epoch, key] of before) {
    expect(keys.get(epoch, false)!.equals(key), epoch).to.equal(true);
  }
}

describe('retention: casebridge keys rewrap (rotating CASEBRIDGE_DATA_KEY)', function () {
  this.timeout(120_000);
  let work: string;
  let oldKeyPath: string;
  let newKeyPath: string;
  let oldKey: Buffer;
  let nextKey: Buffer;

  before(async function () {
    work = mkdtempSync(join(tmpdir(), 'casebridge-rewrap-'));
    oldKeyPath = join(work, 'old-data.key.pem');
    newKeyPath = join(work, 'new-data.key.pem');
    copyFileSync((await getTestPki()).path('data/data.key.pem'), oldKeyPath);
    writeFileSync(newKeyPath, dataKeyPem(), { mode: 0o600 });
    oldKey = readDataKey(oldKeyPath);
    nextKey = readDataKey(newKeyPath);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** No line of the command's output carries either key or an epoch key file's bytes. */
  function expectNoKeyMaterial(text: string, dir: string): void {
    for (const k of [oldKey, nextKey]) {
      expect(text).not.to.include(k.toString('base64'));
      expect(text).not.to.include(k.toString('hex'));
    }
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.key'))) {
      const bytes = readFileSync(join(dir, f));
      expect(text).not.to.include(bytes.toString('base64').slice(0, 24));
      expect(text).not.to.include(bytes.toString('hex').slice(0, 24));
    }
  }

  describe("a stopped gateway's key directory", function () {
    let env: Record<string, string>;
    let keyDir: string;
    const sent: { id: string; jws: string }[] = [];
    let epochs: string[];

    before(async function () {
      env = await testEnv({ CASEBRIDGE_DATA_KEY: oldKeyPath, CASEBRIDGE_LOG_LEVEL: 'error' });
      keyDir = join(env['CASEBRIDGE_DATA_DIR']!, 'keys');
      // The gateway's clock runs ahead by whole days, so its messages go to three epochs.
      let offset = 0;
      const gw = await startGateway({
        config: loadConfig(env),
        logger: silent(),
        now: () => new Date(Date.now() + offset),
      });
      try {
        const sys = await identity(A, 'system');
        for (const o of [0, 1, 2]) {
          offset = o * DAY;
          const env = sampleEnvelope('evidence.request');
          const jws = signAs(env, sys);
          const res = await submit(gw, sys, jws);
          expect(res.status, res.text).to.equal(202);
          sent.push({ id: env.id, jws });
        }
      } finally {
        await gw.close();
      }
      epochs = new FileEpochKeys(keyDir, oldKey).list();
      expect(epochs).to.have.length(3);
    });
    after(async () => {
      if (env) await releaseTestEnv(env);
    });

    it('--dry-run: every epoch key opens with the current key, counted; nothing written', function () {
      const before = snapshot(keyDir);
      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--dry-run'], env);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.slice(0, 3)).to.deep.equal(epochs.map((e) => `${e} opens with the current key`));
      expect(lines[3]).to.match(
        /^dry run: 3 epoch keys to rewrap, 0 already new, in .*; nothing written$/,
      );
      expect(snapshot(keyDir)).to.deep.equal(before);
    });

    it('refuses to run without --offline (exit 2, one line naming it); nothing written', function () {
      const before = snapshot(keyDir);
      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath], env);
      expect(r.code).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.include('--offline');
      expect(snapshot(keyDir)).to.deep.equal(before);
    });

    it('refuses to run, even with --offline, while a gateway runs on the embedded store', async function () {
      if (env['CASEBRIDGE_DATABASE_URL'] !== undefined) this.skip(); // nothing to see on PostgreSQL
      const gw = await startGateway({ config: loadConfig(env), logger: silent() });
      try {
        const before = snapshot(keyDir);
        const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
        expect(r.code, r.stdout + r.stderr).to.equal(2);
        const lines = r.stderr.trim().split('\n');
        expect(lines, r.stderr).to.have.length(1);
        expect(lines[0]).to.match(/a gateway is running on CASEBRIDGE_DATA_DIR/);
        expect(snapshot(keyDir)).to.deep.equal(before);
      } finally {
        await gw.close();
      }
    });

    it('refuses a --new-key that is the current key or not a data key (exit 2 naming --new-key)', function () {
      const bad = join(work, 'not-a-key.pem');
      writeFileSync(bad, 'not a key\n');
      for (const path of [oldKeyPath, bad, join(work, 'missing.pem')]) {
        const r = cli(['keys', 'rewrap', '--new-key', path, '--offline'], env);
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr.trim().split('\n')).to.have.length(1);
        expect(r.stderr).to.include('--new-key');
      }
      expect(new FileEpochKeys(keyDir, oldKey).list()).to.deep.equal(epochs);
      for (const e of epochs) expect(keyOf(keyDir, e, { oldKey })).to.equal('oldKey');
    });

    it('rewraps every epoch key: a gateway on the new key serves the old messages, one on the old key refuses to start', async function () {
      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.slice(0, 3)).to.deep.equal(epochs.map((e) => `${e} rewrapped`));
      expect(lines[3]).to.match(
        /^3 epoch keys in .* under the new key \(3 rewrapped, 0 already new\)/,
      );
      expectNoKeyMaterial(r.stdout + r.stderr, keyDir);
      for (const e of epochs) expect(keyOf(keyDir, e, { oldKey, nextKey })).to.equal('nextKey');
      expect(readdirSync(keyDir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);

      // The same store, now on the new data key: each old message's exact JWS.
      const gw = await startGateway({
        config: loadConfig({ ...env, CASEBRIDGE_DATA_KEY: newKeyPath }),
        logger: silent(),
      });
      try {
        const sys = await identity(A, 'system');
        for (const m of sent) {
          const res = await call(gw, sys, 'GET', `/v1/messages/${m.id}`);
          expect(res.status, res.text).to.equal(200);
          expect(res.json().jws).to.equal(m.jws);
        }
      } finally {
        await gw.close();
      }

      // On the old key: `serve` stops with one line naming CASEBRIDGE_DATA_KEY.
      const old = cli(['serve'], env);
      expect(old.code, old.stderr).to.equal(2);
      const err = old.stderr.trim().split('\n');
      expect(err, old.stderr).to.have.length(1);
      expect(err[0]).to.include('CASEBRIDGE_DATA_KEY');
    });

    it('a second run finds every epoch key already new', function () {
      const before = snapshot(keyDir);
      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.slice(0, 3)).to.deep.equal(epochs.map((e) => `${e} already new`));
      expect(lines[3]).to.include('(0 rewrapped, 3 already new)');
      expect(snapshot(keyDir)).to.deep.equal(before);
    });
  });

  describe('interruptions and foreign files', function () {
    let env: Record<string, string>;
    let keyDir: string;

    beforeEach(async function () {
      keyDir = mkdtempSync(join(work, 'keys-'));
      env = await testEnv({
        CASEBRIDGE_DATA_KEY: oldKeyPath,
        CASEBRIDGE_KEY_DIR: keyDir,
      });
    });
    afterEach(async () => {
      await releaseTestEnv(env);
      rmSync(keyDir, { recursive: true, force: true });
    });

    it('after a crash that left files rewrapped and a temporary file, a rerun finishes', function () {
      const epochs = days(6);
      const before = keyDirWith(keyDir, oldKey, epochs);
      // What a run killed in the middle leaves: two files under the new key, the
      // third's new file written under its temporary name but not renamed yet.
      for (const e of epochs.slice(0, 2)) {
        writeFileSync(
          join(keyDir, `epoch-${e}.key`),
          seal(nextKey, before.get(e)!, epochKeyAad(e)),
        );
      }
      const tmp = tempPathOf(join(keyDir, `epoch-${epochs[2]}.key`));
      writeFileSync(tmp, seal(nextKey, before.get(epochs[2]!)!, epochKeyAad(epochs[2]!)));

      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout.trim().split('\n')).to.deep.equal([
        'removed 1 temporary file an interrupted write left',
        ...epochs.slice(0, 2).map((e) => `${e} already new`),
        ...epochs.slice(2).map((e) => `${e} rewrapped`),
        `6 epoch keys in ${keyDir} under the new key (4 rewrapped, 2 already new); install it as CASEBRIDGE_DATA_KEY on every gateway, then start them`,
      ]);
      expect(existsSync(tmp)).to.equal(false);
      expectAllUnder(keyDir, nextKey, before);
      for (const e of epochs) expect(keyOf(keyDir, e, { oldKey })).to.equal(undefined);
    });

    it('killed with SIGKILL in the middle, a rerun brings every file under the new key', async function () {
      const epochs = days(400);
      const before = keyDirWith(keyDir, oldKey, epochs);
      const child = spawn(
        process.execPath,
        [MAIN, 'keys', 'rewrap', '--new-key', newKeyPath, '--offline'],
        { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      // Killed as soon as the first file is done; hundreds are still to go.
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString('utf8').includes(' rewrapped')) child.kill('SIGKILL');
      });
      expect(await exited).to.equal('SIGKILL');
      const states = epochs.map((e) => keyOf(keyDir, e, { oldKey, nextKey }));
      expect(states).not.to.include(undefined);
      expect(states.filter((s) => s === 'nextKey').length).to.be.above(0);
      expect(states.filter((s) => s === 'oldKey').length).to.be.above(0);

      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n');
      const done = states.filter((s) => s === 'nextKey').length;
      expect(lines.filter((l) => l.endsWith(' already new'))).to.have.length(done);
      expect(lines.filter((l) => l.endsWith(' rewrapped'))).to.have.length(400 - done);
      expectAllUnder(keyDir, nextKey, before);
      expect(readdirSync(keyDir).filter((f) => !f.endsWith('.key'))).to.deep.equal([]);
    });

    it('overwrites the old wrapped bytes once renamed, but not those a hard-linked backup keeps', function () {
      const [first, second] = days(2) as [string, string];
      keyDirWith(keyDir, oldKey, [first, second]);
      const firstPath = join(keyDir, `epoch-${first}.key`);
      const secondPath = join(keyDir, `epoch-${second}.key`);
      const firstOld = readFileSync(firstPath);
      const secondOld = readFileSync(secondPath);
      // A handle on the first file's old bytes, as the disk blocks would be; a
      // hard link to the second's, as `cp -al` makes a backup.
      const fd = openSync(firstPath, 'r');
      const backup = join(work, `backup-${second}.key`);
      linkSync(secondPath, backup);
      try {
        const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
        expect(r.code, r.stdout + r.stderr).to.equal(0);
        const seen = Buffer.alloc(firstOld.length);
        readSync(fd, seen, 0, seen.length, 0);
        expect(seen.equals(firstOld)).to.equal(false);
        expect(() => open(oldKey, seen, epochKeyAad(first))).to.throw();
        expect(readFileSync(backup).equals(secondOld)).to.equal(true);
        expect(keyOf(keyDir, second, { oldKey, nextKey })).to.equal('nextKey');
      } finally {
        closeSync(fd);
        rmSync(backup, { force: true });
      }
    });

    it('a file under an unknown key: exit 1, a line naming the file, nothing rewritten', function () {
      const epochs = days(4);
      keyDirWith(keyDir, oldKey, epochs);
      const bad = join(keyDir, `epoch-${epochs[2]}.key`);
      writeFileSync(bad, seal(newKey(), randomBytes(32), epochKeyAad(epochs[2]!)));
      const before = snapshot(keyDir);

      for (const args of [['--offline'], ['--dry-run']]) {
        const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, ...args], env);
        expect(r.code, r.stdout + r.stderr).to.equal(1);
        expect(r.stdout.trim().split('\n')).to.deep.equal([
          `${epochs[2]} error: ${bad} opens with neither CASEBRIDGE_DATA_KEY nor --new-key`,
        ]);
        const err = r.stderr.trim().split('\n');
        expect(err, r.stderr).to.have.length(1);
        expect(err[0]).to.include('nothing rewrapped');
        expectNoKeyMaterial(r.stdout + r.stderr, keyDir);
        expect(snapshot(keyDir)).to.deep.equal(before);
      }
    });

    it('leaves a local-data.key.pem as it is, and names an epoch key only it opens', function () {
      const epochs = days(2);
      const before = keyDirWith(keyDir, oldKey, epochs);
      const localPath = join(keyDir, 'local-data.key.pem');
      const localPem = dataKeyPem();
      writeFileSync(localPath, localPem, { mode: 0o600 });

      const ok = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
      const lines = ok.stdout.trim().split('\n');
      expect(lines[0]).to.match(
        /^note: .*local-data\.key\.pem is the key a store opened without CASEBRIDGE_DATA_KEY keeps/,
      );
      expect(lines.slice(1, 3)).to.deep.equal(epochs.map((e) => `${e} rewrapped`));
      expect(readFileSync(localPath, 'utf8')).to.equal(localPem);
      expectAllUnder(keyDir, nextKey, before);

      // A day created by a store that ran on the local key instead of CASEBRIDGE_DATA_KEY.
      new FileEpochKeys(keyDir, readDataKey(localPath)).get('2001-01-03', true);
      const r = cli(['keys', 'rewrap', '--new-key', newKeyPath, '--offline'], env);
      expect(r.code, r.stdout + r.stderr).to.equal(1);
      expect(r.stdout).to.include(
        `2001-01-03 error: ${join(keyDir, 'epoch-2001-01-03.key')} opens only with local-data.key.pem`,
      );
      expect(r.stdout).not.to.include(localPem.split('\n')[1]!);
    });
  });
});
