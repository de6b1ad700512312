-- The hybrid profile's control plane: secrets sealed under a master key, and analysis definitions.
-- The hybrid profile's secrets (servers have no OS keyring): AES-256-GCM ciphertext, one row per name. The master
-- key lives outside the database (an environment variable or a file on each server); the name is the cipher's
-- associated data, so a row copied under another name does not decrypt.
CREATE TABLE encrypted_secrets (
    name        TEXT PRIMARY KEY,
    nonce       TEXT NOT NULL,
    ciphertext  TEXT NOT NULL,
    updated_at  {timestamp} NOT NULL
);

-- The hybrid profile's analysis definitions (the local profile keeps them as files in the project folder;
-- `pluto-duck analysis export|import` moves them between the two). One JSON document per analysis.
CREATE TABLE analysis_definitions (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    doc         TEXT NOT NULL,
    created_at  {timestamp} NOT NULL,
    updated_at  {timestamp} NOT NULL,
    PRIMARY KEY (project_id, id)
);
