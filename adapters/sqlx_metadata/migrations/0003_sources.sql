CREATE TABLE sources (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    host            TEXT,
    port            INTEGER,
    database_name   TEXT,
    user_name       TEXT,
    password_secret TEXT,
    path            TEXT,
    read_only       {bool} NOT NULL DEFAULT {true},
    created_at      {timestamp} NOT NULL,
    PRIMARY KEY (project_id, name)
);
