/** Picks the store the configuration names (protocol §11): SQLite unless a database URL is set. */
import type { AuditActor } from '../audit/types.js';
import type { Config } from '../config/index.js';
import type { SigningIdentity } from '../envelope/sign.js';
import type { MessageVault } from '../retention/vault.js';
import { DataDirLock } from './sqlite/dir-lock.js';
import { SqliteStore } from './sqlite-store.js';
import { ThreadStore } from './sqlite/thread.js';
import type { Store } from './types.js';

export interface OpenStoreOptions {
  config: Pick<Config, 'dataDir' | 'databaseUrl' | 'dataKey' | 'keyDir' | 'storeThread'>;
  now: () => Date;
  /**
   * The identity that signs receipts, for a store on a thread of its own. Given only
   * when `now` is the wall clock: a thread has its own and cannot call this one's.
   */
  thread?: { gateway: SigningIdentity; onFailure?: (e: Error) => void };
  gatewayActor: AuditActor;
  vault: MessageVault;
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const { config, now, gatewayActor, vault } = opts;
  if (config.databaseUrl !== undefined) {
    // Loaded only when asked for: the embedded default never touches the pg driver.
    const { openPostgresStore } = await import('./postgres/index.js');
    return openPostgresStore({ url: config.databaseUrl, now, gatewayActor, vault });
  }
  if (opts.thread !== undefined && config.storeThread) {
    return ThreadStore.open({
      dataDir: config.dataDir,
      dataKey: config.dataKey,
      keyDir: config.keyDir,
      gatewayActor,
      gateway: opts.thread.gateway,
      ...(opts.thread.onFailure === undefined ? {} : { onFailure: opts.thread.onFailure }),
    });
  }
  // One gateway process per embedded store: a second one stops at start.
  const dirLock = DataDirLock.acquire(config.dataDir);
  try {
    return new SqliteStore({ dataDir: config.dataDir, now, gatewayActor, vault, dirLock });
  } catch (e) {
    dirLock.release();
    throw e;
  }
}
