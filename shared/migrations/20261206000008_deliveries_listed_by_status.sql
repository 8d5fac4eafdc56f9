-- A recipient's deliveries are listed from its index by status, once per
-- status (deliveries::listing::page_ids), so the indexes by recipient alone
-- go: every delivery wrote an entry into one of them on its insert and on
-- each of its two updates that change an indexed column (dispatched, then
-- delivered or dead), 3 of the 14 index entries of its life.
DROP INDEX webhook_deliveries_by_agent;
DROP INDEX webhook_deliveries_by_client;
