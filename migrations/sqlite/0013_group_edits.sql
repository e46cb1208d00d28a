-- no-transaction
-- Group sessions that can be repaired: the video room of a group session holds its
-- seats, its accepted therapists and its moderator, so a room may hold more than the
-- 50 people of the first schema. The largest room is now 100 (the code keeps instant
-- rooms at 2-50 and a full group session needs at most 50 + 10 + 1).
--
-- SQLite cannot change a CHECK in place: the table is rebuilt (the documented
-- twelve-step procedure). Foreign keys are switched off around the rebuild, so the
-- DROP does not cascade into the tables that reference instant_sessions (every row
-- is copied with its id, so their references stay valid). Edits of group sessions
-- themselves need no new column.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE instant_sessions_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    session_name TEXT NOT NULL,
    share_token TEXT NOT NULL UNIQUE,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    kind TEXT NOT NULL CHECK (kind IN ('instant','group')),
    max_participants BIGINT NOT NULL CHECK (max_participants BETWEEN 2 AND 100),
    is_active SMALLINT NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    restricted SMALLINT NOT NULL DEFAULT 0,
    waiting_room SMALLINT NOT NULL DEFAULT 0 CHECK (waiting_room IN (0, 1))
);
INSERT INTO instant_sessions_rebuilt (id, session_name, share_token, therapist_id,
    organization_id, kind, max_participants, is_active, created_at, expires_at, ended_at,
    restricted, waiting_room)
SELECT id, session_name, share_token, therapist_id, organization_id, kind,
    max_participants, is_active, created_at, expires_at, ended_at, restricted, waiting_room
FROM instant_sessions;
DROP TABLE instant_sessions;
ALTER TABLE instant_sessions_rebuilt RENAME TO instant_sessions;
CREATE INDEX instant_sessions_therapist_idx ON instant_sessions(therapist_id, created_at);
CREATE INDEX instant_sessions_organization_idx ON instant_sessions(organization_id, created_at);
COMMIT;
PRAGMA foreign_keys = ON;
