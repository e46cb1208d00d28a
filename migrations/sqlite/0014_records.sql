-- Records: the audit log becomes append-only, and clinical notes get the columns of
-- their encrypted form.
--
-- 1. `audit_log.organization_id` loses its reference to `organizations`: with
--    ON DELETE SET NULL, deleting an organization rewrote its audit rows, and an
--    audit row must outlive what it describes. SQLite cannot drop a constraint, so
--    the table is rebuilt (same columns, same rows).
CREATE TABLE audit_log_append_only (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT,
    actor_id TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    at BIGINT NOT NULL
);
INSERT INTO audit_log_append_only
    (id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at)
    SELECT id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at
    FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_append_only RENAME TO audit_log;
-- The read API walks an organization's log newest first by (at, id).
CREATE INDEX audit_log_organization_idx ON audit_log(organization_id, at, id);
CREATE INDEX audit_log_target_idx ON audit_log(target_type, target_id);
CREATE INDEX audit_log_actor_idx ON audit_log(actor_id, at);

-- 2. The database refuses to change or remove an audit row, whoever asks.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be updated');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted');
END;

-- 3. Notes encrypted at rest (AES-256-GCM, see docs/RECORDS.md): which key sealed the
--    text, the 96-bit nonce and the ciphertext with its tag, both base64. `body` keeps
--    the plaintext only until the server seals it at its next start; a sealed row has
--    `body = ''` (a real note is never empty).
ALTER TABLE scheduled_session_notes ADD COLUMN body_key_id TEXT;
ALTER TABLE scheduled_session_notes ADD COLUMN body_nonce TEXT;
ALTER TABLE scheduled_session_notes ADD COLUMN body_sealed TEXT;
CREATE INDEX scheduled_session_notes_key_idx ON scheduled_session_notes(body_key_id);
