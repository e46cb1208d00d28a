-- Records: the audit log becomes append-only, and clinical notes get the columns of
-- their encrypted form.
--
-- 1. `audit_log.organization_id` loses its reference to `organizations`: with
--    ON DELETE SET NULL, deleting an organization rewrote its audit rows, and an
--    audit row must outlive what it describes.
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_organization_id_fkey;
-- The read API walks an organization's log newest first by (at, id).
DROP INDEX IF EXISTS audit_log_organization_idx;
CREATE INDEX audit_log_organization_idx ON audit_log(organization_id, at, id);
CREATE INDEX audit_log_actor_idx ON audit_log(actor_id, at);

-- 2. The database refuses to change or remove an audit row, whoever asks (TRUNCATE
--    included).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- 3. Notes encrypted at rest (AES-256-GCM, see docs/RECORDS.md): which key sealed the
--    text, the 96-bit nonce and the ciphertext with its tag, both base64. `body` keeps
--    the plaintext only until the server seals it at its next start; a sealed row has
--    `body = ''` (a real note is never empty).
ALTER TABLE scheduled_session_notes ADD COLUMN body_key_id TEXT;
ALTER TABLE scheduled_session_notes ADD COLUMN body_nonce TEXT;
ALTER TABLE scheduled_session_notes ADD COLUMN body_sealed TEXT;
CREATE INDEX scheduled_session_notes_key_idx ON scheduled_session_notes(body_key_id);
