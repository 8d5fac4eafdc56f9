-- A delivery's row is updated three times on its way (the relay's mark, the
-- worker's lease, the attempt's record). The lease changes no indexed
-- column, so with room left on its page it is a HOT update: no new entry in
-- any of the table's eleven indexes. Full pages (the default fillfactor of
-- 100) left it none. Pages written from now on keep 30 % free.
ALTER TABLE webhook_deliveries SET (fillfactor = 70);
