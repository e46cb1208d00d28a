-- Group sessions that can be repaired: the video room of a group session holds its
-- seats, its accepted therapists and its moderator, so a room may hold more than the
-- 50 people of the first schema. The largest room is now 100 (the code keeps instant
-- rooms at 2-50 and a full group session needs at most 50 + 10 + 1). Edits of group
-- sessions themselves need no new column.
ALTER TABLE instant_sessions DROP CONSTRAINT instant_sessions_max_participants_check;
ALTER TABLE instant_sessions ADD CONSTRAINT instant_sessions_max_participants_check
    CHECK (max_participants BETWEEN 2 AND 100);
