/**
 * The PostgreSQL store's schema: the logical schema of the embedded store
 * (src/store/schema.sql.ts) at the same version number, so both engines report one
 * version. Migrations are versioned steps, run at start in one transaction under an
 * advisory lock: of several gateways starting together, one migrates and the
 * others find the work done.
 */
import type pg from 'pg';
import { ConfigError } from '../../errors.js';
import { SCHEMA_VERSION } from '../schema.sql.js';

export { SCHEMA_VERSION };

/** The advisory lock that serializes migrations (any fixed 64-bit key). */
const MIGRATION_LOCK = 0x6361_7365_6272;

/**
 * Version 3: the first the PostgreSQL store ships with, equal to SQLite's v3.
 * Differences are in the types only: bigint for integers, bytea for blobs,
 * timestamptz for the outbox and lease times, which run on the database's clock.
 * Added for several gateways: `log_head` (the sequencer), the outbox claim columns
 * and `leases`.
 */
const V3 = `
CREATE TABLE messages (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id              text NOT NULL UNIQUE,
  digest          text NOT NULL,
  envelope_digest text NOT NULL,
  case_ref        text NOT NULL,
  type            text NOT NULL,
  from_agency     text NOT NULL,
  to_agency       text NOT NULL,
  priority        text NOT NULL,
  priority_rank   integer NOT NULL,
  respond_by      text,
  deadline_key    bigint NOT NULL,
  in_reply_to     text,
  created_at      text NOT NULL,
  accepted_at     text NOT NULL,
  log_index       bigint NOT NULL,
  status          text NOT NULL,
  decision        text,
  claimed_by      text,
  deadline        text,
  due_soon_key    bigint NOT NULL DEFAULT 9007199254740991,
  claimed_name    text,
  claimed_at      text,
  claim_expires_at bigint,
  overdue_noted   boolean NOT NULL DEFAULT false
);
CREATE INDEX messages_received ON messages (to_agency, priority_rank, deadline_key, seq);
CREATE INDEX messages_sent ON messages (from_agency, priority_rank, deadline_key, seq);
CREATE INDEX messages_reply ON messages (in_reply_to);
CREATE INDEX messages_claims ON messages (claim_expires_at) WHERE status = 'claimed';
CREATE INDEX messages_open_deadlines ON messages (deadline_key)
  WHERE status <> 'decided' AND NOT overdue_noted;

CREATE TABLE message_bodies (
  seq         bigint PRIMARY KEY REFERENCES messages (seq),
  sealed      bytea,
  wrapped_key bytea,
  epoch       text,
  handling    text NOT NULL,
  response    text NOT NULL,
  shredded_at text
);
CREATE INDEX message_bodies_epoch ON message_bodies (epoch) WHERE sealed IS NOT NULL;

CREATE TABLE message_history (
  n             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id    text NOT NULL,
  status        text NOT NULL,
  at            text NOT NULL,
  actor_agency  text NOT NULL,
  actor_role    text NOT NULL,
  actor_subject text NOT NULL,
  event         text NOT NULL,
  decision      text,
  actor_name    text
);
CREATE INDEX message_history_id ON message_history (message_id, n);

CREATE TABLE outbox (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id      text NOT NULL UNIQUE,
  next_attempt_at timestamptz NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  -- The gateway whose relay holds the row, until claim_until (protocol §11).
  claimed_by      text,
  claim_until     timestamptz
);

CREATE TABLE deliveries (
  message_id   text PRIMARY KEY,
  agency       text NOT NULL,
  delivered_at text NOT NULL
);

-- The sequencer: every write transaction locks this one row first. It holds the
-- tree size and the latest entry's ts (ms), so the holder knows the next index.
CREATE TABLE log_head (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  size       bigint NOT NULL,
  last_ts_ms bigint NOT NULL
);
INSERT INTO log_head (size, last_ts_ms) VALUES (0, 0);

CREATE TABLE audit_entries (
  idx   bigint PRIMARY KEY,
  entry bytea NOT NULL
);
-- Perfect-subtree hashes (RFC 6962 §2.1), level 0 (the leaf hashes) included, so
-- any set of nodes a proof needs is one query.
CREATE TABLE audit_nodes (
  level integer NOT NULL,
  idx   bigint NOT NULL,
  hash  bytea NOT NULL,
  PRIMARY KEY (level, idx)
);
CREATE TABLE checkpoints (
  size      bigint PRIMARY KEY,
  root      bytea NOT NULL,
  note      text NOT NULL,
  signed_at text NOT NULL
);

CREATE TABLE leases (
  name       text PRIMARY KEY,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);

CREATE TABLE files (
  agency    text NOT NULL,
  sha256    text NOT NULL,
  size      bigint NOT NULL,
  stored_at text NOT NULL,
  stored_ms bigint NOT NULL,
  log_index bigint NOT NULL,
  PRIMARY KEY (agency, sha256)
);
CREATE INDEX files_age ON files (stored_ms);
CREATE TABLE file_bindings (
  message_id text NOT NULL,
  sha256     text NOT NULL,
  agency     text NOT NULL,
  PRIMARY KEY (message_id, sha256)
);
CREATE INDEX file_bindings_file ON file_bindings (agency, sha256);
CREATE TABLE file_custody (
  n             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  agency        text NOT NULL,
  sha256        text NOT NULL,
  event         text NOT NULL,
  message_id    text,
  log_index     bigint NOT NULL,
  at            text NOT NULL,
  actor_agency  text NOT NULL,
  actor_role    text NOT NULL,
  actor_subject text NOT NULL
);
CREATE INDEX file_custody_file ON file_custody (agency, sha256, n);

-- Append-only in the database itself (defence in depth: the store never issues these).
CREATE FUNCTION casebridge_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
  FOR EACH ROW EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
  FOR EACH ROW EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
  FOR EACH STATEMENT EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER message_history_append_only BEFORE UPDATE OR DELETE ON message_history
  FOR EACH ROW EXECUTE FUNCTION casebridge_append_only();
CREATE TRIGGER message_history_no_truncate BEFORE TRUNCATE ON message_history
  FOR EACH STATEMENT EXECUTE FUNCTION casebridge_append_only();
`;

/** Step `k` brings a database from version `to - 1` (or empty) to `to`. */
export const MIGRATIONS: readonly { to: number; sql: string }[] = [{ to: 3, sql: V3 }];

/**
 * Creates the schema or migrates it to SCHEMA_VERSION, in one transaction under
 * the migration lock. A database of a newer version stops the start (protocol §11).
 */
export async function migrate(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)',
    );
    const { rows } = await client.query<{ value: string }>(
      "SELECT value FROM meta WHERE key = 'schema_version'",
    );
    const found = rows[0]?.value;
    const version = found === undefined ? 0 : Number(found);
    if (!Number.isSafeInteger(version) || version > SCHEMA_VERSION || version < 0) {
      throw new ConfigError(
        'CASEBRIDGE_DATABASE_URL',
        `holds store schema version ${found}; this gateway knows up to ${SCHEMA_VERSION}`,
      );
    }
    for (const step of MIGRATIONS) {
      if (step.to > version) await client.query(step.sql);
    }
    await client.query(
      `INSERT INTO meta (key, value) VALUES ('schema_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [String(SCHEMA_VERSION)],
    );
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
