-- A registry per account: repositories are keyed by (registry, name), and the nullable `owner`
-- (NULL: the server's default account) becomes the NOT NULL `registry`. `?1` is the default
-- account, which only the server knows. SQLite cannot drop the old UNIQUE (name) in place, so
-- the table is rebuilt keeping every `id`, and with it every `repository_id` that refers to it;
-- the migration runs with foreign keys off and checks them all before it commits.

-- Expirations name their repository by text (their history outlives it): record its registry.
ALTER TABLE lifecycle_expirations ADD COLUMN registry TEXT NOT NULL DEFAULT '';
UPDATE lifecycle_expirations SET registry = coalesce(
    (SELECT coalesce(r.owner, ?1) FROM repositories r WHERE r.name = lifecycle_expirations.repository), ?1);
DROP INDEX lifecycle_expirations_repository;
CREATE INDEX lifecycle_expirations_repository ON lifecycle_expirations(registry, repository, id);

CREATE TABLE repositories_keyed (
    id                        INTEGER PRIMARY KEY,
    registry                  TEXT    NOT NULL,
    name                      TEXT    NOT NULL,
    created_at                INTEGER NOT NULL,
    tag_mutability            TEXT    NOT NULL DEFAULT 'MUTABLE',
    tag_mutability_exclusions TEXT    NOT NULL DEFAULT '',
    scan_on_push              INTEGER NOT NULL DEFAULT 0,
    encryption_type           TEXT    NOT NULL DEFAULT 'AES256',
    kms_key                   TEXT,
    policy                    TEXT,
    lifecycle_policy          TEXT,
    lifecycle_evaluated_at    INTEGER,
    UNIQUE (registry, name)
);
INSERT INTO repositories_keyed (id, registry, name, created_at, tag_mutability, tag_mutability_exclusions,
    scan_on_push, encryption_type, kms_key, policy, lifecycle_policy, lifecycle_evaluated_at)
SELECT id, coalesce(owner, ?1), name, created_at, tag_mutability, tag_mutability_exclusions,
    scan_on_push, encryption_type, kms_key, policy, lifecycle_policy, lifecycle_evaluated_at
FROM repositories;
DROP TABLE repositories;
ALTER TABLE repositories_keyed RENAME TO repositories;

-- Lifecycle-policy previews, one per repository, read a page at a time: `position` is the
-- row's place in the preview, `tagged` lets a filtered page use an index too.
CREATE TABLE lifecycle_previews (
    repository_id  INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    policy_text    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expiring_total INTEGER NOT NULL
);
CREATE TABLE lifecycle_preview_rows (
    repository_id INTEGER NOT NULL REFERENCES lifecycle_previews(repository_id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    tagged        INTEGER NOT NULL,
    digest        TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    pushed_at     INTEGER NOT NULL,
    rule_priority INTEGER NOT NULL,
    PRIMARY KEY (repository_id, position)
) WITHOUT ROWID;
CREATE INDEX lifecycle_preview_rows_tagged ON lifecycle_preview_rows(repository_id, tagged, position);
CREATE INDEX lifecycle_preview_rows_digest ON lifecycle_preview_rows(repository_id, digest);
