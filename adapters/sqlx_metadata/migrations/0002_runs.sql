CREATE TABLE runs (
    id              TEXT PRIMARY KEY NOT NULL,
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    input           TEXT NOT NULL,
    actor           TEXT NOT NULL,
    created_at      {timestamp} NOT NULL,
    started_at      {timestamp},
    finished_at     {timestamp},
    rows            {int64} NOT NULL DEFAULT 0,
    bytes           {int64} NOT NULL DEFAULT 0,
    columns         TEXT NOT NULL DEFAULT '[]',
    error           TEXT,
    error_position  {int64},
    truncated       {bool} NOT NULL DEFAULT {false}
);
CREATE INDEX runs_by_project ON runs (project_id, kind, created_at DESC);
