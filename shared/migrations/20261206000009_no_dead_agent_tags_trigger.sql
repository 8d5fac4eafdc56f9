-- Agents are never deleted: agents_are_kept refuses a DELETE before any row
-- goes (hot_path_without_foreign_keys), so the trigger that removed a
-- deleted agent's tags can never fire.
DROP TRIGGER agent_tags_delete ON agents;
DROP FUNCTION agent_tags_delete();
