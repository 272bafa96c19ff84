/**
 * The embedded store's schema. Audit tables refuse UPDATE and DELETE in the
 * database itself (defence in depth: the application never issues them).
 */
export const SCHEMA_VERSION = 3;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  digest         TEXT NOT NULL,
  -- RFC 8785 digest of the envelope: a resubmission of the id is compared on it (protocol §3),
  -- so replays are answered without the body, even after retention destroyed it.
  envelope_digest TEXT NOT NULL,
  case_ref       TEXT NOT NULL,
  type           TEXT NOT NULL,
  from_agency    TEXT NOT NULL,
  to_agency      TEXT NOT NULL,
  priority       TEXT NOT NULL,
  priority_rank  INTEGER NOT NULL,
  respond_by     TEXT,
  -- protocol §5.5: the earliest of respondBy and a freeze's executeBy; ms, or MAX_SAFE_INTEGER.
  deadline_key   INTEGER NOT NULL,
  in_reply_to    TEXT,
  created_at     TEXT NOT NULL,
  accepted_at    TEXT NOT NULL,
  log_index      INTEGER NOT NULL,
  -- Lifecycle only (accepted|queued|delivered|claimed|decided); the decision is its own column.
  status         TEXT NOT NULL,
  decision       TEXT,
  claimed_by     TEXT,
  deadline       TEXT,
  -- From this instant (ms) the message is due soon.
  due_soon_key   INTEGER NOT NULL DEFAULT 9007199254740991,
  claimed_name   TEXT,
  claimed_at     TEXT,
  claim_expires_at INTEGER,
  -- 1 once the gateway reported the message overdue.
  overdue_noted  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_received ON messages (to_agency, priority_rank, deadline_key, seq);
CREATE INDEX IF NOT EXISTS messages_sent ON messages (from_agency, priority_rank, deadline_key, seq);
CREATE INDEX IF NOT EXISTS messages_reply ON messages (in_reply_to);
CREATE INDEX IF NOT EXISTS messages_claims ON messages (claim_expires_at) WHERE status = 'claimed';
CREATE INDEX IF NOT EXISTS messages_open_deadlines ON messages (deadline_key)
  WHERE status <> 'decided' AND overdue_noted = 0;

-- The bytes of a message, written once: status changes rewrite only the small row above.
-- The JWS is sealed under a key of its own, wrapped under the key of its epoch (a UTC
-- day) that lives outside the database (src/retention). Past the retention period the
-- sealed bytes and the wrapped key are erased and shredded_at is set; the rest stays.
-- The envelope is the JWS payload and is not stored twice.
CREATE TABLE IF NOT EXISTS message_bodies (
  seq         INTEGER PRIMARY KEY,
  sealed      BLOB,
  wrapped_key BLOB,
  epoch       TEXT,
  handling    TEXT NOT NULL,
  response    TEXT NOT NULL,
  shredded_at TEXT
);
CREATE INDEX IF NOT EXISTS message_bodies_epoch ON message_bodies (epoch) WHERE sealed IS NOT NULL;

CREATE TABLE IF NOT EXISTS message_history (
  message_id     TEXT NOT NULL,
  n              INTEGER PRIMARY KEY AUTOINCREMENT,
  status         TEXT NOT NULL,
  at             TEXT NOT NULL,
  actor_agency   TEXT NOT NULL,
  actor_role     TEXT NOT NULL,
  actor_subject  TEXT NOT NULL,
  event          TEXT NOT NULL DEFAULT '',
  decision       TEXT,
  -- The actor certificate's CN at the time: shown to the two agencies, never audited.
  actor_name     TEXT
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
CREATE TRIGGER IF NOT EXISTS message_history_no_update BEFORE UPDATE ON message_history
  BEGIN SELECT RAISE(ABORT, 'message_history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS message_history_no_delete BEFORE DELETE ON message_history
  BEGIN SELECT RAISE(ABORT, 'message_history is append-only'); END;
`;

/**
 * Version 1 → 2: lifecycle and decision apart, claims with holder name and expiry,
 * deadlines. Deadlines of freezes are recomputed from the JWS afterwards.
 */
export const MIGRATE_1_TO_2 = `
ALTER TABLE messages RENAME COLUMN respond_by_key TO deadline_key;
ALTER TABLE messages ADD COLUMN deadline TEXT;
ALTER TABLE messages ADD COLUMN due_soon_key INTEGER NOT NULL DEFAULT 9007199254740991;
ALTER TABLE messages ADD COLUMN claimed_name TEXT;
ALTER TABLE messages ADD COLUMN claimed_at TEXT;
ALTER TABLE messages ADD COLUMN claim_expires_at INTEGER;
ALTER TABLE messages ADD COLUMN overdue_noted INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET status = CASE
    WHEN decision IN ('rejected', 'executed', 'partially-executed') THEN 'decided'
    WHEN status = 'claimed' THEN 'claimed'
    ELSE 'delivered' END
  WHERE decision IS NOT NULL;
UPDATE messages SET claimed_name = '', claimed_at = (SELECT MAX(h.at) FROM message_history h
    WHERE h.message_id = messages.id AND h.status = 'claimed')
  WHERE status = 'claimed';
ALTER TABLE message_history ADD COLUMN event TEXT NOT NULL DEFAULT '';
ALTER TABLE message_history ADD COLUMN decision TEXT;
ALTER TABLE message_history ADD COLUMN actor_name TEXT;
UPDATE message_history SET event = 'decided', decision = status,
    status = CASE WHEN status IN ('rejected', 'executed', 'partially-executed')
      THEN 'decided' ELSE 'delivered' END
  WHERE status IN ('rejected', 'needs-info', 'in-progress', 'executed', 'partially-executed')
    OR (status = 'accepted' AND n > (SELECT MIN(h.n) FROM message_history h
      WHERE h.message_id = message_history.message_id));
UPDATE message_history SET event = 'released'
  WHERE event = '' AND status = 'delivered' AND EXISTS (SELECT 1 FROM message_history h
    WHERE h.message_id = message_history.message_id AND h.n < message_history.n
      AND h.status = 'claimed');
UPDATE message_history SET event = status WHERE event = '';
`;

/**
 * Version 2 → 3: the plaintext JWS column goes; the store re-inserts every body
 * sealed (src/retention). With secure_delete on, the old pages are zeroed.
 */
export const MIGRATE_2_TO_3 = `
DROP TABLE message_bodies;
CREATE TABLE message_bodies (
  seq         INTEGER PRIMARY KEY,
  sealed      BLOB,
  wrapped_key BLOB,
  epoch       TEXT,
  handling    TEXT NOT NULL,
  response    TEXT NOT NULL,
  shredded_at TEXT
);
`;
