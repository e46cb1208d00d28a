-- Accounts: people sign in with e-mail and password. Only an argon2id hash of the password
-- is kept. Refresh tokens rotate: each row is one token (stored as its SHA-256), `family_id`
-- ties together every token descended from one sign-in, so a replayed (already used) token
-- revokes its whole family. Invitations are single use and expire; only the SHA-256 of the
-- link's token is kept. Times are Unix milliseconds.
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens(user_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens(expires_at);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('client','therapist','admin','organization','super_admin')),
    therapist_id TEXT REFERENCES therapists(id) ON DELETE SET NULL,
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    withdrawn_at BIGINT,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX invitations_organization_idx ON invitations(organization_id, created_at);
CREATE INDEX invitations_email_idx ON invitations(email);
