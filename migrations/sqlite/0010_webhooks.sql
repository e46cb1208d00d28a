-- Webhooks: one HTTPS endpoint per organization, and the outbox of events for it.
--
-- An event is written to `webhook_events` in the same transaction as the change it
-- reports, and stays there until it is delivered (2xx) or given up (`failed`): a
-- restart loses nothing. A worker claims a due row by moving `next_attempt_at` to the
-- end of its lease and setting `claim_token`; a row whose worker died becomes due
-- again when the lease ends. Every attempt is kept in `webhook_attempts`.
CREATE TABLE webhook_endpoints (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    -- Comma-separated event types, or '*' for all.
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    -- The exact body that is signed and sent.
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    claim_token TEXT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);
CREATE INDEX webhook_events_log ON webhook_events (organization_id, created_at);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, attempt);
