-- 1:1 scheduling (seed 002), PostgreSQL: holds, booked sessions, notes, and the
-- scheduled_* views that replace the placeholders of 0002.
--
-- No double booking: exclusion constraints on (therapist, time range) and (client,
-- time range) over non-cancelled sessions. btree_gist gives GiST the equality on
-- TEXT; it is installed in schema public so that it outlives any one schema (the
-- default operator class is found whatever the search_path).
CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public;

-- Holds: a short-lived claim on one or more slots (the occurrences of a series) of a
-- therapist and a client, confirmed into sessions or released. A hold blocks its
-- slots while status = 'active' and expires_at is in the future (see scheduled_busy).
CREATE TABLE schedule_holds (
    id TEXT PRIMARY KEY NOT NULL,
    hold_key TEXT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','confirmed','released','expired')),
    created_by TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idempotency_key TEXT,
    request_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    released_at BIGINT,
    UNIQUE (created_by, idempotency_key)
);
CREATE INDEX schedule_holds_organization_idx ON schedule_holds(organization_id);
CREATE INDEX schedule_holds_therapist_idx ON schedule_holds(therapist_id, status);
CREATE INDEX schedule_holds_client_idx ON schedule_holds(client_id, status);

CREATE TABLE schedule_hold_occurrences (
    id TEXT PRIMARY KEY NOT NULL,
    hold_id TEXT NOT NULL REFERENCES schedule_holds(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    CHECK (end_ms > start_ms),
    UNIQUE (hold_id, position)
);
CREATE INDEX schedule_hold_occurrences_start_idx ON schedule_hold_occurrences(start_ms);

-- Booked 1:1 sessions. Intervals are half-open: [start_ms, end_ms).
CREATE TABLE scheduled_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE RESTRICT,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE RESTRICT,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    time_zone TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled','completed','cancelled')),
    attendance TEXT NOT NULL DEFAULT 'unknown' CHECK (attendance IN ('unknown','attended','no_show','late_cancel')),
    hold_id TEXT REFERENCES schedule_holds(id) ON DELETE SET NULL,
    series_id TEXT REFERENCES schedule_holds(id) ON DELETE SET NULL,
    video_session_id TEXT UNIQUE REFERENCES instant_sessions(id) ON DELETE SET NULL,
    created_by TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    cancelled_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    cancel_reason TEXT,
    CHECK (end_ms > start_ms)
);
CREATE INDEX scheduled_sessions_organization_idx ON scheduled_sessions(organization_id, start_ms);
CREATE INDEX scheduled_sessions_therapist_idx ON scheduled_sessions(therapist_id, start_ms);
CREATE INDEX scheduled_sessions_client_idx ON scheduled_sessions(client_id, start_ms);
CREATE INDEX scheduled_sessions_start_idx ON scheduled_sessions(start_ms);
CREATE INDEX scheduled_sessions_hold_idx ON scheduled_sessions(hold_id);
ALTER TABLE scheduled_sessions ADD CONSTRAINT scheduled_sessions_therapist_no_overlap
    EXCLUDE USING gist (therapist_id WITH =, int8range(start_ms, end_ms) WITH &&)
    WHERE (status <> 'cancelled');
ALTER TABLE scheduled_sessions ADD CONSTRAINT scheduled_sessions_client_no_overlap
    EXCLUDE USING gist (client_id WITH =, int8range(start_ms, end_ms) WITH &&)
    WHERE (status <> 'cancelled');

-- Session notes, one row per note; every change is written to the audit log.
CREATE TABLE scheduled_session_notes (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES scheduled_sessions(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    author_id TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX scheduled_session_notes_session_idx ON scheduled_session_notes(session_id, created_at);

-- Replace the placeholder views of 0002 (same columns and types).
DROP VIEW scheduled_busy;
CREATE VIEW scheduled_busy AS
    SELECT s.therapist_id AS user_id, s.start_ms AS start_ms, s.end_ms AS end_ms, s.id AS source_id
    FROM scheduled_sessions s WHERE s.status <> 'cancelled'
    UNION ALL
    SELECT s.client_id, s.start_ms, s.end_ms, s.id
    FROM scheduled_sessions s WHERE s.status <> 'cancelled'
    UNION ALL
    SELECT h.therapist_id, o.start_ms, o.end_ms, h.id
    FROM schedule_holds h JOIN schedule_hold_occurrences o ON o.hold_id = h.id
    WHERE h.status = 'active' AND h.expires_at > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
    UNION ALL
    SELECT h.client_id, o.start_ms, o.end_ms, h.id
    FROM schedule_holds h JOIN schedule_hold_occurrences o ON o.hold_id = h.id
    WHERE h.status = 'active' AND h.expires_at > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT);

DROP VIEW scheduled_events;
CREATE VIEW scheduled_events AS
    SELECT s.therapist_id AS user_id, s.id AS event_id, CAST('one_on_one' AS TEXT) AS event_type,
           CAST('Session with ' || cu.display_name AS TEXT) AS title,
           s.start_ms AS start_ms, s.end_ms AS end_ms, s.status AS status
    FROM scheduled_sessions s JOIN users cu ON cu.id = s.client_id
    UNION ALL
    SELECT s.client_id, s.id, CAST('one_on_one' AS TEXT),
           CAST('Session with ' || tu.display_name AS TEXT), s.start_ms, s.end_ms, s.status
    FROM scheduled_sessions s JOIN users tu ON tu.id = s.therapist_id;

DROP VIEW scheduled_room_invitees;
CREATE VIEW scheduled_room_invitees AS
    SELECT s.video_session_id AS instant_session_id, s.therapist_id AS user_id
    FROM scheduled_sessions s WHERE s.video_session_id IS NOT NULL AND s.status <> 'cancelled'
    UNION ALL
    SELECT s.video_session_id, s.client_id
    FROM scheduled_sessions s WHERE s.video_session_id IS NOT NULL AND s.status <> 'cancelled';
