-- Berth vulnerability database: written once by `import`, read-only afterwards.
-- JSON columns hold OSV's own shapes (see src/osv.rs).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,   -- format, imported_at, source_updated_at, complete
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE advisories (
    key       INTEGER PRIMARY KEY,  -- what `affected` refers to (one b-tree step per join)
    id        TEXT NOT NULL UNIQUE,
    modified  TEXT NOT NULL,        -- RFC 3339 as written
    published TEXT,
    summary   TEXT,
    details   TEXT,
    aliases   TEXT NOT NULL,        -- JSON ["CVE-…"]
    upstream  TEXT NOT NULL,        -- JSON ["CVE-…"]
    severity  TEXT NOT NULL,        -- JSON [{"type","score"}]
    refs      TEXT NOT NULL,        -- JSON [url] (OSV `references`)
    withdrawn INTEGER NOT NULL      -- 1 only while importing; such rows are deleted before the end
);

-- Clustered by the lookup key, so that the rows of one package lie together.
CREATE TABLE affected (
    ecosystem       TEXT NOT NULL,  -- exactly as written, e.g. `Debian:12`
    name            TEXT NOT NULL,  -- lookup name: PEP 503 normalised for PyPI
    advisory        INTEGER NOT NULL REFERENCES advisories (key),
    package         TEXT NOT NULL,  -- name as written
    ranges          TEXT NOT NULL,  -- JSON [{"type","events":[{"introduced":…}]}]
    versions        TEXT NOT NULL,  -- JSON ["1.0"]
    vendor_severity TEXT,
    PRIMARY KEY (ecosystem, name, advisory)
) WITHOUT ROWID;
-- `affected_advisory ON affected (advisory)` is created by the import when it first replaces a
-- duplicate record.

-- Filled at the end of the import: advisories per ecosystem.
CREATE TABLE ecosystems (
    ecosystem  TEXT PRIMARY KEY,
    advisories INTEGER NOT NULL
) WITHOUT ROWID;
