-- `agent_tags` followed updates of `agents` through a statement-level
-- trigger with transition tables, which Postgres fires for every UPDATE
-- statement on the table, whatever it changes and even when it matches no
-- row: the worker's record of each delivered webhook (whose statement clears
-- the agent endpoint's run of failures, and almost always matches nothing)
-- and every heartbeat ran its DELETE and INSERT on `agent_tags`, each
-- started, planned and ended, to change nothing. A trigger with a column list
-- would fire only for the tag fields, but Postgres refuses transition tables
-- on one.
--
-- Now the trigger fires for each row whose tag fields changed (its WHEN
-- clause), and rewrites that agent's rows. An update that changes none of
-- them calls nothing. A batch that changes many (the reputation task's, up
-- to 1,000 agents) costs about what the set-based version did: measured on
-- 20k agents, 1,000 price changes in one statement took 141-291 ms before
-- and 134-211 ms after. The statement-level INSERT trigger stays as it is.
--
-- The body names its table with its schema: PL/pgSQL looks names up under
-- the writer's search_path (empty in a pg_dump restore). The previous
-- release sees no difference. `CREATE OR REPLACE TRIGGER` swaps the trigger
-- under a lock that stops writes to `agents` but not reads (`DROP TRIGGER`'s
-- would stop reads too, on the replica as well), and waits for it at most
-- `lock_timeout`, so a long transaction on `agents` fails the deploy rather
-- than queue every write behind it. Both run in the migration's transaction.

SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION agent_tags_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM public.agent_tags WHERE agent_id = NEW.id;
    INSERT INTO public.agent_tags (tag, agent_id, rating, score, price, created_at, capabilities, search)
    SELECT DISTINCT tag, NEW.id, NEW.rating, NEW.score, NEW.price, NEW.created_at, NEW.capabilities, NEW.search
    FROM unnest(NEW.capabilities) AS tag
    WHERE NEW.active;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER agent_tags_update AFTER UPDATE ON agents FOR EACH ROW
    WHEN ((OLD.capabilities, OLD.rating, OLD.score, OLD.price, OLD.created_at, OLD.active, OLD.search)
          IS DISTINCT FROM (NEW.capabilities, NEW.rating, NEW.score, NEW.price, NEW.created_at, NEW.active, NEW.search))
    EXECUTE FUNCTION agent_tags_update();
