-- What a kind of run reports besides rows and bytes (JSON text): an ingest's rejected rows, an analysis
-- run's steps, a dbt invocation's nodes.
ALTER TABLE runs ADD COLUMN detail TEXT;
