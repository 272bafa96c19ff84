/**
 * The embedded store on a thread of its own. Its transactions (the SQLite
 * statements, the commit, sealing message bytes, signing receipts and hashing
 * the audit log) run on a worker thread, so the gateway's event loop keeps to
 * TLS, HTTP and verification and the two share the machine's cores. Every port
 * is asynchronous already; each call is one message each way.
 */
import { Worker } from 'node:worker_threads';
import type { AuditActor } from '../../audit/types.js';
import { soleSigner } from '../../checkpoints/ports.js';
import type { SigningIdentity } from '../../envelope/sign.js';
import type { FileIndex } from '../../files/types.js';
import type { ChangeListener } from '../../messages/types.js';
import type { EpochKeys } from '../../retention/keys.js';
import { CasebridgeError } from '../../errors.js';
import type { NewMessage, ReceiptFields, ReceiptMaker } from '../../submission/ports.js';
import { StoreUnavailableError } from '../errors.js';
import type { Store } from '../types.js';
import {
  fromWire,
  reviveBuffers,
  type Reply,
  type Request,
  type StoreThreadData,
  type WireMessage,
} from './thread-wire.js';

export interface StoreThreadOptions {
  dataDir: string;
  /** CASEBRIDGE_DATA_KEY and CASEBRIDGE_KEY_DIR: the worker opens its own vault. */
  dataKey: string;
  keyDir: string;
  gatewayActor: AuditActor;
  /** Signs receipts; the same identity as the submission path's. */
  gateway: SigningIdentity;
  /** Told once if the thread dies; every call from then on is refused as UNAVAILABLE. */
  onFailure?: (e: Error) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Methods<T> = {
  [K in keyof T & string]-?: T[K] extends (...args: never[]) => unknown ? K : never;
}[keyof T & string];

export class ThreadStore implements Store {
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: ChangeListener[] = [];
  private nextId = 0;
  private broken: Error | undefined;
  private closing = false;
  readonly lease = soleSigner;
  readonly files: FileIndex;

  private constructor(
    private readonly worker: Worker,
    private readonly onFailure: ((e: Error) => void) | undefined,
  ) {
    worker.on('message', (rs: Reply[]) => {
      for (const r of rs) this.onReply(r);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', () => this.fail(new Error('the store thread exited')));
    const files = {} as Record<string, unknown>;
    for (const m of FILE_METHODS) files[m] = (...args: unknown[]) => this.call(`files.${m}`, args);
    this.files = files as unknown as FileIndex;
  }

  /** Starts the thread and waits until its store is open; its refusals (a held lock, a schema) are thrown here. */
  static async open(opts: StoreThreadOptions): Promise<ThreadStore> {
    const data: StoreThreadData = {
      dataDir: opts.dataDir,
      dataKey: opts.dataKey,
      keyDir: opts.keyDir,
      gatewayActor: opts.gatewayActor,
      gatewayKey: opts.gateway.key,
      gatewayChain: opts.gateway.chain.map((c) => c.toString()),
    };
    const worker = new Worker(new URL('./thread-worker.js', import.meta.url), { workerData: data });
    await new Promise<void>((resolve, reject) => {
      const first = ([r]: Reply[]) => {
        worker.off('message', first);
        worker.off('error', reject);
        if (r !== undefined && 'failed' in r) {
          void worker.terminate();
          reject(fromWire(r.failed));
        } else resolve();
      };
      worker.on('message', first);
      worker.on('error', reject);
    });
    return new ThreadStore(worker, opts.onFailure);
  }

  private onReply(r: Reply): void {
    if ('change' in r) {
      for (const l of this.listeners) {
        try {
          l(r.change);
        } catch {
          // A listener's failure never undoes or blocks a committed write.
        }
      }
      return;
    }
    if (!('id' in r)) return;
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if ('error' in r) p.reject(fromWire(r.error));
    else p.resolve(reviveBuffers(r.value));
  }

  /** The thread died: nothing in flight committed for sure, and nothing later can. */
  private fail(e: Error): void {
    if (this.broken !== undefined) return;
    this.broken = e;
    // The thread ends by itself once the store has closed; that is no failure.
    if (!this.closing) this.onFailure?.(e);
    const err = new StoreUnavailableError('stopped', 'STORE_THREAD', e);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.broken !== undefined) {
      return Promise.reject(new StoreUnavailableError('stopped', 'STORE_THREAD', this.broken));
    }
    return new Promise<T>((resolve, reject) => {
      const id = ++this.nextId;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.send({ id, method, args });
    });
  }

  /** Calls made in one turn of the event loop go over in one message. */
  private outgoing: Request[] = [];
  private send(req: Request): void {
    if (this.outgoing.length === 0) setImmediate(() => this.flushOutgoing());
    this.outgoing.push(req);
  }

  private flushOutgoing(): void {
    const batch = this.outgoing;
    this.outgoing = [];
    this.worker.postMessage(batch);
  }

  private method<K extends Methods<Store>>(name: K): Store[K] {
    return ((...args: unknown[]) => this.call(name, args)) as Store[K];
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /**
   * The receipt is signed on the store's thread with the gateway key it was given,
   * from the fields of the caller's receipt maker; a maker without them (not the
   * gateway's) cannot be carried over and is refused.
   */
  accept: Store['accept'] = (msg, makeReceipt) =>
    this.withFields(makeReceipt, (fields) => this.call('accept', [wireMessage(msg), fields]));
  decide: Store['decide'] = (id, action, actor, update, makeReceipt) =>
    this.withFields(makeReceipt, (fields) =>
      this.call('decide', [id, action, actor, wireMessage(update), fields]),
    );

  private withFields<T>(make: ReceiptMaker, run: (f: ReceiptFields) => Promise<T>): Promise<T> {
    if (make.fields === undefined) {
      return Promise.reject(
        new CasebridgeError('INTERNAL', 'this store signs only receipts of the gateway key'),
      );
    }
    return run(make.fields);
  }

  getMessage = this.method('getMessage');
  history = this.method('history');
  list = this.method('list');
  replies = this.method('replies');
  recorded = this.method('recorded');
  review = this.method('review');
  lapseExpired = this.method('lapseExpired');
  takeNewlyOverdue = this.method('takeNewlyOverdue');
  deadlineCounts = this.method('deadlineCounts');
  treeSize = this.method('treeSize');
  entries = this.method('entries');
  nodesAt = this.method('nodesAt');
  append = this.method('append');
  latestCheckpoint = this.method('latestCheckpoint');
  checkpointAt = this.method('checkpointAt');
  checkpoints = this.method('checkpoints');
  addCheckpoint = this.method('addCheckpoint');
  dueOutbox = this.method('dueOutbox');
  markQueued = this.method('markQueued');
  reschedule = this.method('reschedule');
  outboxLag = this.method('outboxLag');
  deliver = this.method('deliver');
  liveEpochs = this.method('liveEpochs');
  shredEpoch = this.method('shredEpoch');
  /** A dead store thread is a store that cannot write, as /readyz reports it. */
  health: Store['health'] = () =>
    this.broken === undefined
      ? this.call('health', [])
      : Promise.resolve({
          engine: 'sqlite',
          failure: 'stopped',
          freeBytes: undefined,
          outboxOldestAgeS: 0,
        });

  /**
   * The epoch keys for the retention pass: a key destroyed here is also dropped
   * and wiped from the store thread's memory, which holds the keys it seals with.
   */
  epochKeys(keys: EpochKeys): EpochKeys {
    return {
      get: (epoch, create) => keys.get(epoch, create),
      list: () => keys.list(),
      destroy: (epoch) => {
        keys.destroy(epoch);
        void this.call('forgetEpochKey', [epoch]).catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.broken === undefined) await this.call('close', []);
    this.broken ??= new Error('the store is closed');
    await this.worker.terminate();
  }
}

/**
 * A new message without its parsed envelope, which the store's thread reads back
 * from the JWS: parsing its payload there costs less than cloning the object here.
 */
function wireMessage(msg: NewMessage): WireMessage {
  const { envelope: _parsed, ...rest } = msg;
  return rest;
}

const FILE_METHODS: readonly (keyof FileIndex)[] = [
  'storedFile',
  'usage',
  'recordStored',
  'boundFile',
  'boundFiles',
  'recordDownload',
  'expireUnbound',
  'custody',
];
