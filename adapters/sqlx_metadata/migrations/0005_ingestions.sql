-- Options of sources read in place (file, http, s3), as JSON.
ALTER TABLE sources ADD COLUMN options TEXT;

-- The ingestion catalog: one JSON document per target table; its sync history is the ingest runs.
CREATE TABLE ingestions (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    target      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    updated_at  {timestamp} NOT NULL,
    PRIMARY KEY (project_id, target)
);
