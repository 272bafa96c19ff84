import type { X509Certificate } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { compactVerify } from 'jose';
import { parsePemChain } from '../../src/pki/pem.js';
import { CasebridgeError, ConfigError } from '../../src/errors.js';
import { KeyMissingError, openVault } from '../../src/retention/vault.js';
import { epochOf } from '../../src/retention/keys.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { ThreadStore } from '../../src/store/sqlite/thread.js';
import { fromWire, reviveBuffers, toWire } from '../../src/store/sqlite/thread-wire.js';
import type { MessageChange } from '../../src/store/types.js';
import { receiptMaker } from '../../src/submission/submit.js';
import { loadConfig } from '../../src/config/index.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { ON_POSTGRES } from '../helpers/database.js';
import {
  identity,
  releaseTestEnv,
  signAs,
  startTestGateway,
  submit,
  testEnv,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { expectOneTree, GATEWAY, newMessage } from './contract.js';

/** The embedded store on a thread of its own: what crosses between the threads arrives intact. */
describe('store: the embedded store on its own thread', function () {
  this.timeout(30_000);
  let dir: string;
  let store: ThreadStore;
  let gatewayCert: X509Certificate;
  let gateway: { key: ReturnType<typeof createPrivateKey>; chain: X509Certificate[] };
  let dataKey: string;
  let failures: Error[];

  beforeEach(async function () {
    const pki = await getTestPki();
    const chain = parsePemChain(pki.files['gateway/gateway.crt.pem']!);
    gatewayCert = chain[0]!;
    gateway = { key: createPrivateKey(pki.files['gateway/gateway.key.pem']!), chain };
    dataKey = pki.path('data/data.key.pem');
    dir = mkdtempSync(join(tmpdir(), 'casebridge-thread-'));
    failures = [];
    store = await ThreadStore.open({
      dataDir: dir,
      dataKey,
      keyDir: join(dir, 'keys'),
      gatewayActor: GATEWAY,
      gateway,
      onFailure: (e) => failures.push(e),
    });
  });

  afterEach(async function () {
    await store.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs the receipt on its thread with the gateway key, from the fields of the maker it was given', async function () {
    const m = newMessage();
    const out = await store.accept(m, receiptMaker(m.envelope, m.digest, gateway));
    expect(out.kind).to.equal('accepted');
    if (out.kind !== 'accepted') return;
    // Pinned: the gateway certificate of the test PKI, not whatever key the receipt names.
    const { payload } = await compactVerify(out.response.receipt, gatewayCert.publicKey);
    expect(JSON.parse(Buffer.from(payload).toString('utf8'))).to.deep.include({
      messageId: m.id,
      digest: m.digest,
      logIndex: out.response.logIndex,
      from: m.envelope.from,
      to: m.envelope.to,
      type: m.envelope.type,
    });
    const replay = await store.accept({ ...m }, receiptMaker(m.envelope, m.digest, gateway));
    expect(replay).to.deep.equal({ kind: 'replay', response: out.response });
    expect((await store.recorded(m.id))?.response).to.deep.equal(out.response);
  });

  it('refuses a receipt maker that is not the gateway key’s, and commits nothing for it', async function () {
    const m = newMessage();
    const refused = await store
      .accept(m, () => 'not a receipt')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).to.be.instanceOf(CasebridgeError);
    expect((refused as CasebridgeError).code).to.equal('INTERNAL');
    expect(await store.getMessage(m.id)).to.equal(undefined);
    expect(await store.treeSize()).to.equal(0);
  });

  it('hands back buffers as Buffers, message bytes opened, and its changes in commit order', async function () {
    const seen: MessageChange[] = [];
    store.onChange((c) => seen.push(c));
    const msgs = Array.from({ length: 5 }, () => newMessage());
    await Promise.all(
      msgs.map((m) => store.accept(m, receiptMaker(m.envelope, m.digest, gateway))),
    );
    for (const m of msgs)
      expect(await store.deliver(m.id, m.digest, GATEWAY)).to.equal('delivered');
    const entries = await store.entries(0, 2);
    expect(entries.every((e) => Buffer.isBuffer(e.bytes))).to.equal(true);
    expect(await expectOneTree(store)).to.equal(15);
    expect((await store.getMessage(msgs[0]!.id))?.jws).to.equal(msgs[0]!.jws);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((c) => `${c.event}:${c.message.id}`)).to.deep.equal(
      msgs.map((m) => `delivered:${m.id}`),
    );
  });

  it('serves the file index through the same thread', async function () {
    expect(await store.files.usage('CN-GX-CZ')).to.equal(0);
    expect(await store.files.boundFiles(newMessage().id)).to.deep.equal([]);
  });

  it('refuses a second store on the same data directory, naming CASEBRIDGE_DATA_DIR', async function () {
    const second = await ThreadStore.open({
      dataDir: dir,
      dataKey,
      keyDir: join(dir, 'keys'),
      gatewayActor: GATEWAY,
      gateway,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(second).to.be.instanceOf(ConfigError);
    expect((second as ConfigError).variable).to.equal('CASEBRIDGE_DATA_DIR');
    expect(await store.treeSize()).to.equal(0);
  });

  it('wipes its copy of an epoch key the retention pass destroys', async function () {
    const m = newMessage();
    await store.accept(m, receiptMaker(m.envelope, m.digest, gateway));
    expect((await store.getMessage(m.id))?.jws).to.equal(m.jws);
    const keys = store.epochKeys(openVault(dataKey, join(dir, 'keys')).keys);
    keys.destroy(epochOf(new Date()));
    const read = await store.getMessage(m.id).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(read, 'the thread no longer holds the key').to.be.instanceOf(KeyMissingError);
  });

  it('refuses every call as UNAVAILABLE once its thread has died, and says so once', async function () {
    const m = newMessage();
    await store.accept(m, receiptMaker(m.envelope, m.digest, gateway));
    await (store as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const late = await store.treeSize().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(late).to.be.instanceOf(StoreUnavailableError);
    expect((late as StoreUnavailableError).code).to.equal('UNAVAILABLE');
    expect((await store.health()).failure).to.equal('stopped');
    expect(failures).to.have.length(1);
  });

  it('reports no failure when it is closed and its thread ends', async function () {
    await store.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(failures).to.deep.equal([]);
  });
});

describe('store thread wire', function () {
  it('carries each kind of error over with its class and what callers read of it', function () {
    const cases: Error[] = [
      new CasebridgeError('ID_CONFLICT', 'taken', {
        members: { digest: 'sha256:x' },
        retryAfterS: 3,
      }),
      new StoreUnavailableError('disk-full', 'SQLITE_FULL'),
      new ConfigError('CASEBRIDGE_DATA_DIR', 'is held by another gateway'),
      new KeyMissingError('2026-12-02'),
      Object.assign(new Error('disk I/O error'), { name: 'SqliteError', code: 'SQLITE_IOERR' }),
    ];
    for (const e of cases) {
      // What postMessage would do to the wire form: a structured clone.
      const back = fromWire(structuredClone(toWire(e)));
      expect(back.constructor).to.equal(e.constructor);
      expect(back.message).to.equal(e.message);
      expect(back.name).to.equal(e.name);
      for (const k of [
        'code',
        'members',
        'retryAfterS',
        'reason',
        'causeCode',
        'variable',
        'epoch',
      ]) {
        expect((back as unknown as Record<string, unknown>)[k], k).to.deep.equal(
          (e as unknown as Record<string, unknown>)[k],
        );
      }
    }
  });

  it('turns cloned Uint8Arrays back into Buffers, nested in arrays and objects', function () {
    const v = reviveBuffers(
      structuredClone({ a: [Buffer.from('x')], b: { c: Buffer.from('yz') }, d: new Date(0), e: 1 }),
    ) as { a: Buffer[]; b: { c: Buffer }; d: Date; e: number };
    expect(Buffer.isBuffer(v.a[0])).to.equal(true);
    expect(v.b.c.toString()).to.equal('yz');
    expect(v.d).to.be.instanceOf(Date);
  });
});

describe('CASEBRIDGE_STORE_THREAD', function () {
  this.timeout(30_000);
  before(function () {
    if (ON_POSTGRES) this.skip();
  });

  it('is on unless set off, and refuses anything but on or off, naming itself', async function () {
    const env = await testEnv();
    try {
      expect(loadConfig(env).storeThread).to.equal(true);
      expect(loadConfig({ ...env, CASEBRIDGE_STORE_THREAD: 'off' }).storeThread).to.equal(false);
      const bad = (() => {
        try {
          return loadConfig({ ...env, CASEBRIDGE_STORE_THREAD: 'yes' });
        } catch (e) {
          return e;
        }
      })();
      expect(bad).to.be.instanceOf(ConfigError);
      expect((bad as ConfigError).variable).to.equal('CASEBRIDGE_STORE_THREAD');
    } finally {
      await releaseTestEnv(env);
    }
  });

  for (const [value, kind] of [
    ['on', ThreadStore],
    ['off', SqliteStore],
  ] as const) {
    it(`${value}: the gateway's store is a ${kind.name}, and a submission gets its receipt`, async function () {
      const t = await startTestGateway({ CASEBRIDGE_STORE_THREAD: value });
      try {
        expect(t.gw.store).to.be.instanceOf(kind);
        const sys = await identity('CN-GX-CZ', 'system');
        const res = await submit(t.gw, sys, signAs(sampleEnvelope('evidence.request'), sys));
        expect(res.status).to.equal(202);
        const pki = await getTestPki();
        const cert = parsePemChain(pki.files['gateway/gateway.crt.pem']!)[0]!;
        await compactVerify(res.json<{ receipt: string }>().receipt, cert.publicKey);
      } finally {
        await t.stop();
      }
    });
  }
});
