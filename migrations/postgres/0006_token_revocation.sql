-- Tokens: accounts can be disabled, and tokens can be revoked one by one (by `jti`, e.g. on
-- sign-out) or all tokens of a subject at once (e.g. a removed guest). Rows are kept until the
-- revoked tokens would have expired anyway, then purged. Times are Unix milliseconds.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens(expires_at);
CREATE INDEX revoked_tokens_subject_idx ON revoked_tokens(subject);

-- Every token of `subject` issued at or before `revoked_at` is refused until `expires_at`
-- (by then all such tokens have expired).
CREATE TABLE revoked_subjects (
    subject TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_subjects_expires_idx ON revoked_subjects(expires_at);
