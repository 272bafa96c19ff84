/**
 * The embedded store on a thread of its own (thread.ts): this worker owns the
 * SQLite database, its group commit and the vault that seals message bytes,
 * and answers the calls the gateway's thread posts to it, one message each.
 */
import { X509Certificate } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { SigningIdentity } from '../../envelope/sign.js';
import { receiptMakerOf } from '../../submission/submit.js';
import { openVault } from '../../retention/vault.js';
import type { ReceiptFields } from '../../submission/ports.js';
import { SqliteStore } from '../sqlite-store.js';
import { DataDirLock } from './dir-lock.js';
import {
  fromWireMessage,
  toWire,
  type Reply,
  type Request,
  type StoreThreadData,
  type WireMessage,
} from './thread-wire.js';

const port = parentPort!;

/** Replies and changes of one turn go over in one message. */
let outgoing: Reply[] = [];
function send(r: Reply): void {
  if (outgoing.length === 0) {
    queueMicrotask(() => {
      const batch = outgoing;
      outgoing = [];
      port.postMessage(batch);
    });
  }
  outgoing.push(r);
}
const data = workerData as StoreThreadData;
const gateway: SigningIdentity = {
  key: data.gatewayKey,
  chain: data.gatewayChain.map((pem) => new X509Certificate(pem)),
};

let store: SqliteStore;
const vault = openVault(data.dataKey, data.keyDir);
try {
  const dirLock = DataDirLock.acquire(data.dataDir);
  try {
    store = new SqliteStore({
      dataDir: data.dataDir,
      gatewayActor: data.gatewayActor,
      vault,
      dirLock,
    });
  } catch (e) {
    dirLock.release();
    throw e;
  }
  store.onChange((change) => send({ change }));
  port.postMessage([{ ready: true }] satisfies Reply[]);
} catch (e) {
  port.postMessage([{ failed: toWire(e) }] satisfies Reply[]);
  process.exit(0);
}

/** Receipts are signed here, inside the transaction, with the gateway's own key. */
function run(req: Request): Promise<unknown> | unknown {
  const a = req.args;
  switch (req.method) {
    case 'accept':
      return store.accept(
        fromWireMessage(a[0] as WireMessage),
        receiptMakerOf(a[1] as ReceiptFields, gateway),
      );
    case 'decide':
      return store.decide(
        a[0] as string,
        a[1] as Parameters<SqliteStore['decide']>[1],
        a[2] as Parameters<SqliteStore['decide']>[2],
        fromWireMessage(a[3] as WireMessage),
        receiptMakerOf(a[4] as ReceiptFields, gateway),
      );
    case 'forgetEpochKey':
      // The gateway's thread destroyed the key file; this drops and wipes the copy held here.
      return vault.keys.destroy(a[0] as string);
    default: {
      const [scope, name] = req.method.includes('.') ? req.method.split('.') : ['', req.method];
      const target = (scope === 'files' ? store.files : store) as unknown as Record<
        string,
        (...args: unknown[]) => unknown
      >;
      return target[name!]!(...a);
    }
  }
}

port.on('message', (reqs: Request[]) => {
  for (const req of reqs) handle(req);
});

function handle(req: Request): void {
  let result: Promise<unknown>;
  try {
    result = Promise.resolve(run(req));
  } catch (e) {
    result = Promise.reject(e);
  }
  result.then(
    (value) => {
      send({ id: req.id, value });
      if (req.method === 'close') setImmediate(() => port.close());
    },
    (e: unknown) => send({ id: req.id, error: toWire(e) }),
  );
}
