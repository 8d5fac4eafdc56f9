-- The relay's statements must have one plan whatever the statistics say. A
-- backlog builds up while Cloud Tasks is away, after the statistics were
-- taken, when they say no row is pending; every index on pending rows then
-- looks equally cheap, and with this one (by when queued) the planner walked
-- every pending row per recipient instead of each recipient's own range. The
-- pending index by recipient is left as the only one: the backlog metric,
-- once a minute, reads its oldest row from it (one pass over the pending
-- entries, the backlog itself).
DROP INDEX webhook_deliveries_pending;
