-- Foundation schema (PostgreSQL). Timestamps are Unix milliseconds (BIGINT) and flags are SMALLINT 0/1, so the
-- same queries and row types work on SQLite and PostgreSQL through sqlx's Any driver.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    theraptrack_controlled SMALLINT NOT NULL DEFAULT 0 CHECK (theraptrack_controlled IN (0, 1)),
    video_sessions_enabled SMALLINT NOT NULL DEFAULT 1 CHECK (video_sessions_enabled IN (0, 1)),
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT REFERENCES organizations(id) ON DELETE RESTRICT,
    role TEXT NOT NULL CHECK (role IN ('client','therapist','organization','admin','super_admin')),
    display_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_organization_idx ON users(organization_id);

CREATE TABLE therapists (
    id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    partner_code TEXT NOT NULL UNIQUE,
    video_sessions_enabled SMALLINT NOT NULL DEFAULT 1 CHECK (video_sessions_enabled IN (0, 1)),
    can_post_blogs SMALLINT NOT NULL DEFAULT 0 CHECK (can_post_blogs IN (0, 1)),
    created_at BIGINT NOT NULL
);
CREATE INDEX therapists_organization_idx ON therapists(organization_id);
CREATE INDEX therapists_video_enabled_idx ON therapists(organization_id, video_sessions_enabled);

CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    therapist_id TEXT REFERENCES therapists(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX clients_organization_idx ON clients(organization_id);
CREATE INDEX clients_therapist_idx ON clients(therapist_id);

CREATE TABLE instant_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    session_name TEXT NOT NULL,
    share_token TEXT NOT NULL UNIQUE,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    kind TEXT NOT NULL CHECK (kind IN ('instant','group')),
    max_participants BIGINT NOT NULL CHECK (max_participants BETWEEN 2 AND 50),
    is_active SMALLINT NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX instant_sessions_therapist_idx ON instant_sessions(therapist_id, created_at);
CREATE INDEX instant_sessions_organization_idx ON instant_sessions(organization_id, created_at);

-- Anonymous guests admitted through a share link; a guest exists for one session only.
CREATE TABLE guests (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES instant_sessions(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX guests_session_idx ON guests(session_id);

CREATE TABLE session_participants (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES instant_sessions(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    guest_id TEXT REFERENCES guests(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    is_active SMALLINT NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    removed SMALLINT NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
    registered_at BIGINT NOT NULL,
    joined_at BIGINT,
    left_at BIGINT,
    CHECK ((user_id IS NULL) <> (guest_id IS NULL)),
    UNIQUE (session_id, user_id),
    UNIQUE (session_id, guest_id)
);
CREATE INDEX session_participants_user_idx ON session_participants(user_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT REFERENCES organizations(id) ON DELETE SET NULL,
    actor_id TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX audit_log_organization_idx ON audit_log(organization_id, at);
CREATE INDEX audit_log_target_idx ON audit_log(target_type, target_id);
