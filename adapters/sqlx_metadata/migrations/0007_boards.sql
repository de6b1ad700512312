-- Boards and their items, one JSON document each (the client owns their content).
CREATE TABLE boards (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE board_items (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    board_id    TEXT NOT NULL,
    id          TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, board_id) REFERENCES boards (project_id, id) ON DELETE CASCADE
);
