-- Berth vulnerability database: written once by `import`, read-only afterwards.
-- JSON columns hold OSV's own shapes (see src/osv.rs).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,   -- format, imported_at, source_updated_at, complete
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE advisories (
    id        TEXT PRIMARY KEY,
    modified  TEXT NOT NULL,    -- RFC 3339 as written
    published TEXT,
    summary   TEXT,
    details   TEXT,
    aliases   TEXT NOT NULL,    -- JSON ["CVE-…"]
    upstream  TEXT NOT NULL,    -- JSON ["CVE-…"]
    severity  TEXT NOT NULL,    -- JSON [{"type","score"}]
    refs      TEXT NOT NULL,    -- JSON [url] (OSV `references`)
    withdrawn INTEGER NOT NULL  -- 1 only while importing; such rows are deleted before the end
);

CREATE TABLE affected (
    advisory        TEXT NOT NULL REFERENCES advisories (id),
    ecosystem       TEXT NOT NULL,  -- exactly as written, e.g. `Debian:12`
    name            TEXT NOT NULL,  -- lookup name: PEP 503 normalised for PyPI
    package         TEXT NOT NULL,  -- name as written
    ranges          TEXT NOT NULL,  -- JSON [{"type","events":[{"introduced":…}]}]
    versions        TEXT NOT NULL,  -- JSON ["1.0"]
    vendor_severity TEXT
);
CREATE INDEX affected_advisory ON affected (advisory);

-- Filled at the end of the import: advisories per ecosystem.
CREATE TABLE ecosystems (
    ecosystem  TEXT PRIMARY KEY,
    advisories INTEGER NOT NULL
) WITHOUT ROWID;
