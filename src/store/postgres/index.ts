/** The PostgreSQL store (protocol §11), selected by CASEBRIDGE_DATABASE_URL. */
export { openPostgresStore, PgStore, type PostgresStoreOptions } from './store.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
