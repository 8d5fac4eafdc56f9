-- The relay claims a batch of pending deliveries for a while instead of
-- holding their row locks while it creates their tasks: a push that reaches
-- the worker before the relay marks its row no longer waits on that lock.
-- A claim that lapses (its relay died) lets another relay take the rows;
-- a task created twice is refused by name. Not indexed, so a claim is a HOT
-- update.
ALTER TABLE webhook_deliveries ADD COLUMN relay_claimed_until timestamptz;
