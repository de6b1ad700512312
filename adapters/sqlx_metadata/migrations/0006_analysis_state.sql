-- What is known of each analysis's last run (definition hash, status, rows), one JSON document per analysis.
CREATE TABLE analysis_state (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
