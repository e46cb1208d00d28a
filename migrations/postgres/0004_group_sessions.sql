-- Group therapy sessions (seed 001): communities with members and moderators,
-- moderator-led session proposals, therapist invitations, member participation.
-- Timestamps are Unix milliseconds (BIGINT); statuses are lowercase TEXT with CHECKs.

CREATE TABLE communities (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    created_by TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX communities_organization_idx ON communities(organization_id);

CREATE TABLE community_members (
    community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('member', 'moderator')),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_members_user_idx ON community_members(user_id);

CREATE TABLE group_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    title TEXT NOT NULL,
    description TEXT,
    session_type TEXT NOT NULL CHECK (session_type IN ('virtual', 'in_person')),
    meeting_link TEXT,
    location TEXT,
    location_address TEXT,
    start_ms BIGINT NOT NULL,
    duration_minutes BIGINT NOT NULL CHECK (duration_minutes BETWEEN 15 AND 180),
    end_ms BIGINT NOT NULL,
    max_participants BIGINT NOT NULL CHECK (max_participants BETWEEN 2 AND 50),
    status TEXT NOT NULL CHECK (status IN ('pending_approval', 'approved', 'cancelled', 'completed')),
    video_session_id TEXT REFERENCES instant_sessions(id) ON DELETE SET NULL,
    reminded_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    CHECK (end_ms = start_ms + duration_minutes * 60000),
    CHECK (session_type = 'virtual' OR location IS NOT NULL)
);
CREATE INDEX group_sessions_community_idx ON group_sessions(community_id, start_ms);
CREATE INDEX group_sessions_organization_idx ON group_sessions(organization_id, start_ms);
CREATE INDEX group_sessions_created_by_idx ON group_sessions(created_by);
CREATE INDEX group_sessions_status_idx ON group_sessions(status, start_ms);
CREATE INDEX group_sessions_start_idx ON group_sessions(start_ms);
CREATE INDEX group_sessions_video_idx ON group_sessions(video_session_id);

CREATE TABLE group_session_invitations (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES group_sessions(id) ON DELETE CASCADE,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined')),
    message TEXT,
    invited_at BIGINT NOT NULL,
    responded_at BIGINT,
    UNIQUE (session_id, therapist_id)
);
CREATE INDEX group_session_invitations_therapist_idx ON group_session_invitations(therapist_id, status);

CREATE TABLE group_session_participants (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES group_sessions(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    attendance_status TEXT NOT NULL DEFAULT 'registered'
        CHECK (attendance_status IN ('registered', 'attended', 'no_show', 'cancelled')),
    joined_at BIGINT NOT NULL,
    left_at BIGINT,
    updated_at BIGINT NOT NULL,
    UNIQUE (session_id, user_id)
);
CREATE INDEX group_session_participants_user_idx ON group_session_participants(user_id, attendance_status);
CREATE INDEX group_session_participants_session_idx ON group_session_participants(session_id, attendance_status);

-- The extension-point views of 0002, now backed by the tables above (same columns).
-- (CREATE OR REPLACE keeps any view built on them valid; the columns are unchanged.)
-- Busy intervals, half-open [start_ms, end_ms): accepted therapists and registered
-- (or attended) participants of sessions that are not cancelled.
CREATE OR REPLACE VIEW group_busy AS
    SELECT i.therapist_id AS user_id, g.start_ms AS start_ms, g.end_ms AS end_ms, g.id AS source_id
    FROM group_session_invitations i JOIN group_sessions g ON g.id = i.session_id
    WHERE i.status = 'accepted' AND g.status <> 'cancelled'
    UNION ALL
    SELECT p.user_id, g.start_ms, g.end_ms, g.id
    FROM group_session_participants p JOIN group_sessions g ON g.id = p.session_id
    WHERE p.attendance_status IN ('registered', 'attended') AND g.status <> 'cancelled';

-- Calendar events: invited (pending or accepted) therapists, the moderator who created
-- the session, and participants who did not cancel. The status is the session's.
CREATE OR REPLACE VIEW group_events AS
    SELECT i.therapist_id AS user_id, g.id AS event_id, CAST('group_session' AS TEXT) AS event_type,
           g.title AS title, g.start_ms AS start_ms, g.end_ms AS end_ms, g.status AS status
    FROM group_session_invitations i JOIN group_sessions g ON g.id = i.session_id
    WHERE i.status IN ('pending', 'accepted')
    UNION
    SELECT g.created_by, g.id, CAST('group_session' AS TEXT), g.title, g.start_ms, g.end_ms, g.status
    FROM group_sessions g
    UNION
    SELECT p.user_id, g.id, CAST('group_session' AS TEXT), g.title, g.start_ms, g.end_ms, g.status
    FROM group_session_participants p JOIN group_sessions g ON g.id = p.session_id
    WHERE p.attendance_status <> 'cancelled';

-- Who may enter the restricted room of a virtual group session: its accepted
-- therapists, its registered participants and its moderator.
CREATE OR REPLACE VIEW group_room_invitees AS
    SELECT g.video_session_id AS instant_session_id, i.therapist_id AS user_id
    FROM group_sessions g JOIN group_session_invitations i ON i.session_id = g.id
    WHERE g.video_session_id IS NOT NULL AND g.session_type = 'virtual'
      AND g.status <> 'cancelled' AND i.status = 'accepted'
    UNION
    SELECT g.video_session_id, p.user_id
    FROM group_sessions g JOIN group_session_participants p ON p.session_id = g.id
    WHERE g.video_session_id IS NOT NULL AND g.session_type = 'virtual'
      AND g.status <> 'cancelled' AND p.attendance_status IN ('registered', 'attended')
    UNION
    SELECT g.video_session_id, g.created_by
    FROM group_sessions g
    WHERE g.video_session_id IS NOT NULL AND g.session_type = 'virtual' AND g.status <> 'cancelled';
