/**
 * The embedded store's schema. Audit tables refuse UPDATE and DELETE in the
 * database itself (defence in depth: the application never issues them).
 */
export const SCHEMA_VERSION = 1;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  digest         TEXT NOT NULL,
  case_ref       TEXT NOT NULL,
  type           TEXT NOT NULL,
  from_agency    TEXT NOT NULL,
  to_agency      TEXT NOT NULL,
  priority       TEXT NOT NULL,
  priority_rank  INTEGER NOT NULL,
  respond_by     TEXT,
  respond_by_key INTEGER NOT NULL,
  in_reply_to    TEXT,
  created_at     TEXT NOT NULL,
  accepted_at    TEXT NOT NULL,
  log_index      INTEGER NOT NULL,
  status         TEXT NOT NULL,
  -- Set once an officer has decided; status then holds the decision.
  decision       TEXT,
  claimed_by     TEXT
);
CREATE INDEX IF NOT EXISTS messages_received ON messages (to_agency, priority_rank, respond_by_key, seq);
CREATE INDEX IF NOT EXISTS messages_sent ON messages (from_agency, priority_rank, respond_by_key, seq);
CREATE INDEX IF NOT EXISTS messages_reply ON messages (in_reply_to);

-- The bytes of a message, written once: status changes rewrite only the small row above.
-- The envelope is the JWS payload and is not stored twice.
CREATE TABLE IF NOT EXISTS message_bodies (
  seq      INTEGER PRIMARY KEY,
  jws      TEXT NOT NULL,
  response TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS message_history (
  message_id     TEXT NOT NULL,
  n              INTEGER PRIMARY KEY AUTOINCREMENT,
  status         TEXT NOT NULL,
  at             TEXT NOT NULL,
  actor_agency   TEXT NOT NULL,
  actor_role     TEXT NOT NULL,
  actor_subject  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_history_id ON message_history (message_id, n);

-- Written in the acceptance transaction; removed when the broker (or the embedded
-- queue) has taken the message.
CREATE TABLE IF NOT EXISTS outbox (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id      TEXT NOT NULL UNIQUE,
  next_attempt_at INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_retry ON outbox (seq) WHERE attempts > 0;

-- One row per message that reached its recipient's inbox: the consumer's dedupe key.
CREATE TABLE IF NOT EXISTS deliveries (
  message_id   TEXT PRIMARY KEY,
  agency       TEXT NOT NULL,
  delivered_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_entries (
  idx   INTEGER PRIMARY KEY,
  entry BLOB NOT NULL
);
-- Perfect-subtree hashes of levels 1 and up (RFC 6962 §2.1): node (level, idx) covers
-- leaves [idx·2^level, (idx+1)·2^level). Level 0 is the hash of the entry itself.
CREATE TABLE IF NOT EXISTS audit_nodes (
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  size      INTEGER PRIMARY KEY,
  root      BLOB NOT NULL,
  note      TEXT NOT NULL,
  signed_at TEXT NOT NULL
);

CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
  BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
  BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_nodes_no_update BEFORE UPDATE ON audit_nodes
  BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_nodes_no_delete BEFORE DELETE ON audit_nodes
  BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
`;
