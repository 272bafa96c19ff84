/** The PostgreSQL store (protocol §11), selected by CASEBRIDGE_DATABASE_URL. */
import type { AuditActor } from '../../audit/types.js';
import { ConfigError } from '../../errors.js';
import type { MessageVault } from '../../retention/vault.js';
import type { Store } from '../types.js';

export interface PostgresStoreOptions {
  url: string;
  now: () => Date;
  gatewayActor: AuditActor;
  vault: MessageVault;
}

export function openPostgresStore(_opts: PostgresStoreOptions): Promise<Store> {
  return Promise.reject(
    new ConfigError('CASEBRIDGE_DATABASE_URL', 'the PostgreSQL store is not available yet'),
  );
}
