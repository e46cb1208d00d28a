-- Clinical note text out of the audit log. Rows of note actions written before this
-- migration copied the note's text into `before_state` / `after_state` (JSON stored as
-- TEXT) under "body"; health data must live only in `session_notes`. Each such state
-- loses "body" and keeps its length in characters instead. Other keys stay.
UPDATE audit_log
SET before_state = CASE
        WHEN before_state IS NULL OR NOT json_valid(before_state) THEN before_state
        WHEN json_type(before_state, '$.body') IS NULL THEN before_state
        ELSE json_set(json_remove(before_state, '$.body'), '$.length',
                      length(json_extract(before_state, '$.body')))
    END,
    after_state = CASE
        WHEN after_state IS NULL OR NOT json_valid(after_state) THEN after_state
        WHEN json_type(after_state, '$.body') IS NULL THEN after_state
        ELSE json_set(json_remove(after_state, '$.body'), '$.length',
                      length(json_extract(after_state, '$.body')))
    END
WHERE action IN ('schedule.note.create', 'schedule.note.update')
   OR target_type = 'scheduled_session_note';
