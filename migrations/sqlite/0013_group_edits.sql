-- Group sessions that can be repaired: the video room of a group session holds its
-- seats, its accepted therapists and its moderator, so a room may hold more than the
-- 50 people of the first schema. The largest room is now 100 (the code keeps instant
-- rooms at 2-50 and a full group session needs at most 50 + 10 + 1). Edits of group
-- sessions themselves need no new column.
--
-- SQLite cannot ALTER a CHECK. Rebuilding instant_sessions would need foreign keys
-- off (its DROP would otherwise cascade into every table that references it), which
-- cannot be switched inside the migration's transaction. A looser CHECK changes no
-- stored row, so the table's definition is edited in place, the procedure SQLite's
-- ALTER TABLE documentation gives for loosening constraints: the schema is reloaded on
-- this connection (RESET), and a throw-away table bumps the schema cookie so every
-- other open connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, 'CHECK (max_participants BETWEEN 2 AND 50)',
                       'CHECK (max_participants BETWEEN 2 AND 100)')
WHERE type = 'table' AND name = 'instant_sessions';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_reload_0013 (id INTEGER);
DROP TABLE schema_reload_0013;
