-- Conversations with the agent, their messages, and the events of runs that outlive the server's memory
-- (an agent turn's steps, tool calls and approvals).
CREATE TABLE conversations (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    title       TEXT NOT NULL,
    privacy     {bool} NOT NULL DEFAULT {false},
    created_at  {timestamp} NOT NULL,
    updated_at  {timestamp} NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX conversations_by_update ON conversations (project_id, updated_at);

CREATE TABLE conversation_messages (
    project_id       TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    id               TEXT NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,
    run_id           TEXT,
    sql_text         TEXT,
    data             TEXT,
    created_at       {timestamp} NOT NULL,
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, conversation_id) REFERENCES conversations (project_id, id) ON DELETE CASCADE
);
CREATE INDEX conversation_messages_in_order ON conversation_messages (project_id, conversation_id, created_at);

CREATE TABLE run_events (
    run_id      TEXT NOT NULL,
    seq         {int64} NOT NULL,
    at          {timestamp} NOT NULL,
    name        TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
