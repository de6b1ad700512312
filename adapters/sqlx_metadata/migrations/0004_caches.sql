CREATE TABLE cached_tables (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    source          TEXT NOT NULL,
    remote_schema   TEXT NOT NULL,
    remote_table    TEXT NOT NULL,
    filter          TEXT,
    cursor_column   TEXT,
    ttl_secs        BIGINT,
    rows            BIGINT NOT NULL DEFAULT 0,
    refreshed_at    {timestamp} NOT NULL,
    created_at      {timestamp} NOT NULL,
    PRIMARY KEY (project_id, name)
);
