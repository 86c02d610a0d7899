-- Berth's metadata on PostgreSQL: the tables of the SQLite store (crates/meta-sqlite, as its
-- migrations leave them), with times as BIGINT epoch milliseconds, digests and ids as TEXT and
-- payloads and hash states as BYTEA. Names, tags, digests and keys are compared and ordered
-- byte by byte (COLLATE "C"), whatever the database's default collation: listings promise byte
-- order.

CREATE TABLE repositories (
    id                        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry                  TEXT    COLLATE "C" NOT NULL,
    name                      TEXT    COLLATE "C" NOT NULL,
    created_at                BIGINT  NOT NULL,
    tag_mutability            TEXT    NOT NULL DEFAULT 'MUTABLE',
    tag_mutability_exclusions TEXT[]  NOT NULL DEFAULT '{}',
    scan_on_push              BOOLEAN NOT NULL DEFAULT false,
    encryption_type           TEXT    NOT NULL DEFAULT 'AES256',
    kms_key                   TEXT,
    policy                    TEXT,
    lifecycle_policy          TEXT,
    lifecycle_evaluated_at    BIGINT,
    UNIQUE (registry, name)
);

-- Resource tags of repositories (ECR TagResource).
CREATE TABLE repository_tags (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    key           TEXT   COLLATE "C" NOT NULL,
    value         TEXT   NOT NULL,
    PRIMARY KEY (repository_id, key)
);

CREATE TABLE blobs (
    digest      TEXT   COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT   COLLATE "C" NOT NULL REFERENCES blobs(digest),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest         TEXT   COLLATE "C" NOT NULL,
    media_type     TEXT   NOT NULL,
    artifact_type  TEXT,
    subject        TEXT   COLLATE "C",
    annotations    TEXT,
    size           BIGINT NOT NULL,
    payload        BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    -- When the image was last pulled (recorded in batches, so approximate like ECR's).
    last_pulled_at BIGINT,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repository_id, subject) WHERE subject IS NOT NULL;

-- kind 0: blob (config or layer), kind 1: child manifest of an index.
CREATE TABLE manifest_references (
    repository_id   BIGINT   NOT NULL,
    manifest_digest TEXT     COLLATE "C" NOT NULL,
    target          TEXT     COLLATE "C" NOT NULL,
    kind            SMALLINT NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, target),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_target ON manifest_references(target);

CREATE TABLE tags (
    repository_id BIGINT NOT NULL,
    name          TEXT   COLLATE "C" NOT NULL,
    digest        TEXT   COLLATE "C" NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repository_id, digest);

CREATE TABLE uploads (
    id            TEXT   COLLATE "C" PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    "offset"      BIGINT NOT NULL,
    hash_state    BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX uploads_repository ON uploads(repository_id);
CREATE INDEX uploads_updated ON uploads(updated_at);

-- Accounts, users, access keys (secrets sealed by the core) and policy documents.
CREATE TABLE accounts (
    id          TEXT   COLLATE "C" PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE users (
    account_id  TEXT   COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT   COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE access_keys (
    id            TEXT   COLLATE "C" PRIMARY KEY,
    account_id    TEXT   COLLATE "C" NOT NULL,
    user_name     TEXT   COLLATE "C" NOT NULL,
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    FOREIGN KEY (account_id, user_name) REFERENCES users(account_id, name) ON DELETE CASCADE
);
CREATE INDEX access_keys_user ON access_keys(account_id, user_name);
CREATE TABLE user_policies (
    account_id  TEXT COLLATE "C" NOT NULL,
    user_name   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, name),
    FOREIGN KEY (account_id, user_name) REFERENCES users(account_id, name) ON DELETE CASCADE
);
CREATE TABLE registry_policies (
    account_id  TEXT COLLATE "C" PRIMARY KEY,
    document    TEXT NOT NULL
);

-- Lifecycle policy runs: what was expired. The history names its repository by text and
-- outlives it.
CREATE TABLE lifecycle_expirations (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry      TEXT    COLLATE "C" NOT NULL,
    repository    TEXT    COLLATE "C" NOT NULL,
    digest        TEXT    NOT NULL,
    tags          TEXT[]  NOT NULL,
    pushed_at     BIGINT  NOT NULL,
    rule_priority INTEGER NOT NULL,
    expired_at    BIGINT  NOT NULL
);
CREATE INDEX lifecycle_expirations_repository ON lifecycle_expirations(registry, repository, id);

-- Lifecycle-policy previews, one per repository, read a page at a time: `position` is the row's
-- place in the preview, `tagged` lets a filtered page use an index too.
CREATE TABLE lifecycle_previews (
    repository_id  BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    policy_text    TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    expiring_total BIGINT NOT NULL
);
CREATE TABLE lifecycle_preview_rows (
    repository_id BIGINT  NOT NULL REFERENCES lifecycle_previews(repository_id) ON DELETE CASCADE,
    position      BIGINT  NOT NULL,
    tagged        BOOLEAN NOT NULL,
    digest        TEXT    COLLATE "C" NOT NULL,
    tags          TEXT[]  NOT NULL,
    pushed_at     BIGINT  NOT NULL,
    rule_priority INTEGER NOT NULL,
    PRIMARY KEY (repository_id, position)
);
CREATE INDEX lifecycle_preview_rows_tagged ON lifecycle_preview_rows(repository_id, tagged, position);
CREATE INDEX lifecycle_preview_rows_digest ON lifecycle_preview_rows(repository_id, digest);

-- Online garbage collection (see gc.rs and berth_registry::gc).
-- The last time a digest was touched: reserved for an upload, linked, mounted, checked by a
-- client, or referenced by a manifest that was deleted. `id` is the reservation token: a row is
-- removed when garbage collection takes its digest, and a new row gets a new id (an identity
-- never hands out a value twice; an upsert that finds the row keeps its id).
CREATE TABLE gc_touches (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      TEXT   COLLATE "C" NOT NULL UNIQUE,
    touched_at  BIGINT NOT NULL
);
CREATE INDEX gc_touches_touched ON gc_touches(touched_at);
-- Digests whose records garbage collection removed and whose bytes are being deleted. While a
-- tombstone exists, nothing may place bytes of the digest.
CREATE TABLE gc_tombstones (
    digest      TEXT   COLLATE "C" PRIMARY KEY,
    started_at  BIGINT NOT NULL
);

-- Deleting a manifest (by digest, by its last tag, or with its repository) touches the blobs it
-- referenced, so their bytes outlive it by the grace period: a pull that read the manifest just
-- before still finds them. Once per statement, over the references it removed.
CREATE FUNCTION gc_touch_on_unreference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gc_touches (digest, touched_at)
    SELECT DISTINCT o.target, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    FROM old_references o
    WHERE o.kind = 0 AND NOT EXISTS (SELECT 1 FROM gc_tombstones t WHERE t.digest = o.target)
    ON CONFLICT (digest) DO UPDATE SET touched_at = greatest(gc_touches.touched_at, excluded.touched_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER gc_touch_on_unreference AFTER DELETE ON manifest_references
    REFERENCING OLD TABLE AS old_references
    FOR EACH STATEMENT EXECUTE FUNCTION gc_touch_on_unreference();

-- Leases on cluster-wide background work. `expires_at` is epoch milliseconds of the database's
-- own clock, so the nodes need not agree on theirs.
CREATE TABLE leases (
    name        TEXT   COLLATE "C" PRIMARY KEY,
    holder      TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);
