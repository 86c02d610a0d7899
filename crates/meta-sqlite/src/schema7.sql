-- Vulnerability scanning (see scan.rs) and the durable job queue (see jobs.rs).

-- An image's scan: the request on record and, once one finished, its result. The foreign key
-- removes it with its image, whichever way the image goes (by digest, by its last tag, with its
-- repository): a scan record never outlives its image.
CREATE TABLE image_scans (
    repository_id     INTEGER NOT NULL,
    digest            TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    description       TEXT,
    requested_at      INTEGER NOT NULL,
    completed_at      INTEGER,
    source_updated_at INTEGER,
    severity_counts   TEXT,
    findings          BLOB    NOT NULL DEFAULT x'',
    inventory         BLOB,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
-- The re-match walk reads only images with an inventory.
CREATE INDEX image_scans_inventory ON image_scans(repository_id, digest) WHERE inventory IS NOT NULL;

-- Package inventories of layers, by detection version. A layer's go with its blob record when
-- garbage collection removes it.
CREATE TABLE layer_inventories (
    digest    TEXT    NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    inventory BLOB    NOT NULL,
    PRIMARY KEY (digest, version)
);

-- Scanning configuration per registry (account id), as the core encodes it.
CREATE TABLE scanning_configurations (
    registry TEXT PRIMARY KEY,
    config   TEXT NOT NULL
);

-- Generations of imported vulnerability data (files of the blob store, by digest): the one with
-- the highest `seq` serves, the one before it is kept, older ones are deleted by the publish.
CREATE TABLE vulndb_generations (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    digest            TEXT    NOT NULL UNIQUE,
    size              INTEGER NOT NULL,
    imported_at       INTEGER NOT NULL,
    source_updated_at INTEGER,
    summary           TEXT    NOT NULL
);

-- Durable background jobs, at most one per (kind, key). `holder` and `claimed_until` (ms of this
-- store's clock) are set while a claimer holds the job; `again` asks for one more run after it.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    run_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    holder        TEXT,
    claimed_until INTEGER,
    again         INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX jobs_due ON jobs(kind, run_at);
