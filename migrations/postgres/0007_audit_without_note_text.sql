-- Clinical note text out of the audit log. Rows of note actions written before this
-- migration copied the note's text into `before_state` / `after_state` (JSON stored as
-- TEXT) under "body"; health data must live only in `session_notes`. Each such state
-- loses "body" and keeps its length in characters instead. Other keys stay.
-- (CASE checks its branches in order, so only JSON objects are cast to jsonb.)
UPDATE audit_log
SET before_state = CASE
        WHEN before_state IS NULL OR before_state NOT LIKE '{%' THEN before_state
        WHEN (before_state::jsonb -> 'body') IS NULL THEN before_state
        ELSE ((before_state::jsonb - 'body')
              || jsonb_build_object('length', char_length(before_state::jsonb ->> 'body')))::text
    END,
    after_state = CASE
        WHEN after_state IS NULL OR after_state NOT LIKE '{%' THEN after_state
        WHEN (after_state::jsonb -> 'body') IS NULL THEN after_state
        ELSE ((after_state::jsonb - 'body')
              || jsonb_build_object('length', char_length(after_state::jsonb ->> 'body')))::text
    END
WHERE action IN ('schedule.note.create', 'schedule.note.update')
   OR target_type = 'scheduled_session_note';
