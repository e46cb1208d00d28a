-- Working hours and time off of therapists.
--
-- `therapist_hours` holds one row per therapist who has configured working hours (its
-- time zone); no row means "bookable at any time". `therapist_hours_intervals` holds
-- the weekly template (weekday 1 = Monday .. 7 = Sunday) and extra hours on single
-- local dates (`on_date`, YYYY-MM-DD): exactly one of the two is set. Times are
-- minutes since local midnight, `[start_minute, end_minute)`, end up to 1440 (24:00).
-- `therapist_time_off` holds ranges of instants (Unix ms, half-open) in which the
-- therapist is not bookable, whether or not working hours are configured.
CREATE TABLE therapist_hours (
    therapist_id TEXT PRIMARY KEY NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE therapist_hours_intervals (
    id TEXT PRIMARY KEY NOT NULL,
    therapist_id TEXT NOT NULL REFERENCES therapist_hours(therapist_id) ON DELETE CASCADE,
    weekday BIGINT CHECK (weekday BETWEEN 1 AND 7),
    on_date TEXT,
    start_minute BIGINT NOT NULL CHECK (start_minute >= 0),
    end_minute BIGINT NOT NULL CHECK (end_minute <= 1440),
    CHECK (start_minute < end_minute),
    CHECK ((weekday IS NULL AND on_date IS NOT NULL) OR (weekday IS NOT NULL AND on_date IS NULL))
);
CREATE INDEX therapist_hours_intervals_therapist ON therapist_hours_intervals (therapist_id);

CREATE TABLE therapist_time_off (
    id TEXT PRIMARY KEY NOT NULL,
    therapist_id TEXT NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    -- A short label the therapist chose ("vacation"); never copied into audit rows.
    label TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (start_ms < end_ms)
);
CREATE INDEX therapist_time_off_range ON therapist_time_off (therapist_id, start_ms);
