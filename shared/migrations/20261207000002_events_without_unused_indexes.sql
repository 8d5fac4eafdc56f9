-- Two indexes of events that no statement reads: nothing looks events up
-- by aggregate (a job's deliveries join their events by id), and `position`
-- comes from its identity sequence, which GENERATED ALWAYS keeps unique
-- without a unique index (the publisher walks `events_unpublished`). Every
-- job wrote an entry into each on its event's insert and again when the
-- event was published (that update changes `published_at`, the predicate of
-- `events_unpublished`, so it is never HOT): 4 of the 16 index entries a job
-- wrote. After a bench run they held 29 MB for 264k events and had been
-- scanned 0 times.
DROP INDEX events_by_aggregate;
ALTER TABLE events DROP CONSTRAINT events_position_key;
