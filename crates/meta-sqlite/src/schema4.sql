-- Accounts, users, access keys (secrets sealed by the core) and policy documents.
CREATE TABLE accounts (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE users (
    account_id  TEXT    NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE access_keys (
    id            TEXT    PRIMARY KEY,
    account_id    TEXT    NOT NULL,
    user_name     TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    FOREIGN KEY (account_id, user_name) REFERENCES users(account_id, name) ON DELETE CASCADE
);
CREATE INDEX access_keys_user ON access_keys(account_id, user_name);
CREATE TABLE user_policies (
    account_id  TEXT    NOT NULL,
    user_name   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    PRIMARY KEY (account_id, user_name, name),
    FOREIGN KEY (account_id, user_name) REFERENCES users(account_id, name) ON DELETE CASCADE
);
CREATE TABLE registry_policies (
    account_id  TEXT    PRIMARY KEY,
    document    TEXT    NOT NULL
);
-- NULL owner: the registry's default account.
ALTER TABLE repositories ADD COLUMN owner TEXT;
ALTER TABLE repositories ADD COLUMN policy TEXT;
ALTER TABLE repositories ADD COLUMN lifecycle_policy TEXT;
-- When an image was last pulled (recorded in batches, so approximate like ECR's).
ALTER TABLE manifests ADD COLUMN last_pulled_at INTEGER;
-- Lifecycle policy runs: when each repository was last evaluated, and what was expired.
ALTER TABLE repositories ADD COLUMN lifecycle_evaluated_at INTEGER;
CREATE TABLE lifecycle_expirations (
    id            INTEGER PRIMARY KEY,
    repository    TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    pushed_at     INTEGER NOT NULL,
    rule_priority INTEGER NOT NULL,
    expired_at    INTEGER NOT NULL
);
CREATE INDEX lifecycle_expirations_repository ON lifecycle_expirations(repository, id);
-- Tag-mutability exclusion filters, one per line.
ALTER TABLE repositories ADD COLUMN tag_mutability_exclusions TEXT NOT NULL DEFAULT '';
