-- Removal sticks. A guest the therapist removed keeps a mark (their token admits them
-- nowhere any more), and the share link they came through is withdrawn: the session
-- gets a fresh link, and the old one mints no new guest identities.
ALTER TABLE guests ADD COLUMN removed_at BIGINT;

CREATE TABLE withdrawn_share_links (
    share_token TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES instant_sessions(id) ON DELETE CASCADE,
    withdrawn_at BIGINT NOT NULL
);
CREATE INDEX withdrawn_share_links_session_idx ON withdrawn_share_links(session_id);
