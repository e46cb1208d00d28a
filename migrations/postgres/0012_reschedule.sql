-- Rescheduling, service codes and recorded hold expiry for 1:1 sessions.
--
-- A hold with session_id is a reschedule hold: confirming it moves that session to
-- the held slot (the session keeps its id and its series) instead of creating one.
-- service_code (a CPT code from the configured list) travels from the hold to the
-- session and can be changed on the booked session.
ALTER TABLE schedule_holds ADD COLUMN session_id TEXT REFERENCES scheduled_sessions(id) ON DELETE CASCADE;
ALTER TABLE schedule_holds ADD COLUMN service_code TEXT;
CREATE INDEX schedule_holds_session_idx ON schedule_holds(session_id);
-- The expiry sweeper looks for active holds past their expiry.
CREATE INDEX schedule_holds_expiry_idx ON schedule_holds(status, expires_at);

ALTER TABLE scheduled_sessions ADD COLUMN service_code TEXT;
-- Set when the session was last moved, with the interval it had before that move.
ALTER TABLE scheduled_sessions ADD COLUMN rescheduled_at BIGINT;
ALTER TABLE scheduled_sessions ADD COLUMN previous_start_ms BIGINT;
ALTER TABLE scheduled_sessions ADD COLUMN previous_end_ms BIGINT;
CREATE INDEX scheduled_sessions_series_idx ON scheduled_sessions(series_id, start_ms);
