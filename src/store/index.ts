export * from './types.js';
export { SqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export {
  FAILURE_DETAIL,
  StoreUnavailableError,
  STORE_RETRY_AFTER_S,
  storeFailureOf,
  type StoreFailure,
} from './errors.js';
export { openStore, type OpenStoreOptions } from './open.js';
