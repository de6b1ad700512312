-- Jobs: named units of work of a project (what runs as one JSON document, its schedule, when the scheduler last
-- considered it due). Their runs are rows of `runs` with kind 'job' and the job's name as input.
CREATE TABLE jobs (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);
