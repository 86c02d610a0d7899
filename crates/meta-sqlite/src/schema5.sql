-- Online garbage collection (see gc.rs).
-- The last time a digest was touched: reserved for an upload, linked, mounted, checked by a
-- client, or referenced by a manifest that was deleted. `id` is the reservation token: a row
-- is removed when garbage collection takes its digest and a new row gets a new id
-- (AUTOINCREMENT never reuses one).
CREATE TABLE IF NOT EXISTS gc_touches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      TEXT    NOT NULL UNIQUE,
    touched_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS gc_touches_touched ON gc_touches(touched_at);
-- Digests whose records garbage collection removed and whose bytes are being deleted. While a
-- tombstone exists, nothing may place bytes of the digest.
CREATE TABLE IF NOT EXISTS gc_tombstones (
    digest      TEXT    PRIMARY KEY,
    started_at  INTEGER NOT NULL
);
-- Deleting a manifest (by digest, by its last tag, or with its repository) touches the blobs it
-- referenced, so their bytes outlive it by the grace period: a pull that read the manifest just
-- before still finds them.
CREATE TRIGGER IF NOT EXISTS gc_touch_on_unreference AFTER DELETE ON manifest_references
WHEN old.kind = 0
BEGIN
    INSERT INTO gc_touches (digest, touched_at)
    SELECT old.target, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
    WHERE NOT EXISTS (SELECT 1 FROM gc_tombstones WHERE digest = old.target)
    ON CONFLICT (digest) DO UPDATE SET touched_at = max(touched_at, excluded.touched_at);
END;
