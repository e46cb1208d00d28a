-- The waiting room. A session may make guests and clients wait until a host lets them
-- in (on by default for instant sessions, set by the API). A host's decision about a
-- person is kept on their registration: admitted people enter directly from then on
-- (a reload, a reconnect, a second device), declined people are refused.
ALTER TABLE instant_sessions ADD COLUMN waiting_room SMALLINT NOT NULL DEFAULT 0 CHECK (waiting_room IN (0, 1));
ALTER TABLE session_participants ADD COLUMN admitted_at BIGINT;
ALTER TABLE session_participants ADD COLUMN declined_at BIGINT;
