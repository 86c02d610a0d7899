-- Vulnerability scanning (see scan.rs) and the durable job queue (see jobs.rs).

-- An image's scan: the request on record and, once one finished, its result. The foreign key
-- removes it with its image, whichever way the image goes (by digest, by its last tag, with its
-- repository): a scan record never outlives its image.
CREATE TABLE image_scans (
    repository_id     BIGINT NOT NULL,
    digest            TEXT   COLLATE "C" NOT NULL,
    kind              TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    description       TEXT,
    requested_at      BIGINT NOT NULL,
    completed_at      BIGINT,
    source_updated_at BIGINT,
    severity_counts   TEXT,
    findings          BYTEA  NOT NULL DEFAULT '',
    inventory         BYTEA,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
-- The re-match walk reads only images with an inventory.
CREATE INDEX image_scans_inventory ON image_scans(repository_id, digest) WHERE inventory IS NOT NULL;

-- Package inventories of layers, by detection version. A layer's go with its blob record when
-- garbage collection removes it.
CREATE TABLE layer_inventories (
    digest    TEXT    COLLATE "C" NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    inventory BYTEA   NOT NULL,
    PRIMARY KEY (digest, version)
);

-- Scanning configuration per registry (account id), as the core encodes it.
CREATE TABLE scanning_configurations (
    registry TEXT COLLATE "C" PRIMARY KEY,
    config   TEXT NOT NULL
);

-- Generations of imported vulnerability data (files of the blob store, by digest): the one with
-- the highest `seq` serves, the one before it is kept, older ones are deleted by the publish.
CREATE TABLE vulndb_generations (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest            TEXT   COLLATE "C" NOT NULL UNIQUE,
    size              BIGINT NOT NULL,
    imported_at       BIGINT NOT NULL,
    source_updated_at BIGINT,
    summary           TEXT   NOT NULL
);

-- Durable background jobs, at most one per (kind, key). `holder` and `claimed_until` (epoch ms
-- of the database's clock) are set while a claimer holds the job; `again` asks for one more run
-- after it.
CREATE TABLE jobs (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT    COLLATE "C" NOT NULL,
    key           TEXT    COLLATE "C" NOT NULL,
    payload       BYTEA   NOT NULL,
    run_at        BIGINT  NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    holder        TEXT,
    claimed_until BIGINT,
    again         BOOLEAN NOT NULL DEFAULT false,
    last_error    TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX jobs_due ON jobs(kind, run_at);
