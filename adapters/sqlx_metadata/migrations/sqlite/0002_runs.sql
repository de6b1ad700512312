CREATE TABLE runs (
    id              TEXT PRIMARY KEY NOT NULL,
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    input           TEXT NOT NULL,
    actor           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    rows            INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    columns         TEXT NOT NULL DEFAULT '[]',
    error           TEXT,
    error_position  INTEGER,
    truncated       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_project ON runs (project_id, kind, created_at DESC);
