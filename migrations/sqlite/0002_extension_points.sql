-- Extension points shared by the scheduling (1:1) and group-therapy features, plus
-- stored notifications.
--
-- The views below are placeholders with no rows. The scheduling migration replaces
-- the scheduled_* views and the group-therapy migration the group_* views (DROP VIEW
-- then CREATE VIEW with the same columns), so the availability check, the unified
-- schedule and the room admission read both features through one query each without
-- either module depending on the other.

-- Rooms made for a booked 1:1 session or a group session admit only their invitees.
ALTER TABLE instant_sessions ADD COLUMN restricted SMALLINT NOT NULL DEFAULT 0;

-- Busy intervals per user (therapist or client/member), half-open [start_ms, end_ms).
CREATE VIEW scheduled_busy AS
    SELECT CAST(NULL AS TEXT) AS user_id, CAST(NULL AS BIGINT) AS start_ms,
           CAST(NULL AS BIGINT) AS end_ms, CAST(NULL AS TEXT) AS source_id
    WHERE 1 = 0;
CREATE VIEW group_busy AS
    SELECT CAST(NULL AS TEXT) AS user_id, CAST(NULL AS BIGINT) AS start_ms,
           CAST(NULL AS BIGINT) AS end_ms, CAST(NULL AS TEXT) AS source_id
    WHERE 1 = 0;

-- Calendar events per user for the unified schedule.
CREATE VIEW scheduled_events AS
    SELECT CAST(NULL AS TEXT) AS user_id, CAST(NULL AS TEXT) AS event_id,
           CAST(NULL AS TEXT) AS event_type, CAST(NULL AS TEXT) AS title,
           CAST(NULL AS BIGINT) AS start_ms, CAST(NULL AS BIGINT) AS end_ms,
           CAST(NULL AS TEXT) AS status
    WHERE 1 = 0;
CREATE VIEW group_events AS
    SELECT CAST(NULL AS TEXT) AS user_id, CAST(NULL AS TEXT) AS event_id,
           CAST(NULL AS TEXT) AS event_type, CAST(NULL AS TEXT) AS title,
           CAST(NULL AS BIGINT) AS start_ms, CAST(NULL AS BIGINT) AS end_ms,
           CAST(NULL AS TEXT) AS status
    WHERE 1 = 0;

-- Who may enter a restricted room.
CREATE VIEW scheduled_room_invitees AS
    SELECT CAST(NULL AS TEXT) AS instant_session_id, CAST(NULL AS TEXT) AS user_id
    WHERE 1 = 0;
CREATE VIEW group_room_invitees AS
    SELECT CAST(NULL AS TEXT) AS instant_session_id, CAST(NULL AS TEXT) AS user_id
    WHERE 1 = 0;

CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notifications_user_idx ON notifications(user_id, created_at);
