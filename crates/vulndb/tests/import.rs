//! Imports of the hand-written OSV fixtures in `testdata/`, and lookups in the result.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_scanner::{AdvisorySource, Event, RangeKind};
use berth_vulndb::{ImportError, ImportReport, MAX_DOCUMENT_BYTES, OpenError, VulnDb, import};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(p)
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(e, n)| ((*e).to_owned(), *n)).collect()
}

/// What importing `testdata/valid` gives, however it is packaged.
fn expected_report() -> ImportReport {
    ImportReport {
        advisories: 7,
        affected: 9,
        withdrawn_skipped: 1,
        duplicates_replaced: 2,
        ecosystems: owned(&[
            ("Alpine:v3.19", 1),
            ("Debian:11", 1),
            ("Debian:12", 2),
            ("PyPI", 2),
            ("Ubuntu:22.04:LTS", 1),
            ("crates.io", 1),
        ]),
        source_updated_at: Some("2024-06-01T00:00:00Z".into()),
        files: 8,
    }
}

fn valid_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["alpine", "debian", "misc", "pypi"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data(&format!("valid/{dir}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// A zip of the valid fixtures in the directory walk's order, with a directory entry and a
/// file that is not JSON beside them.
fn make_zip(path: &Path) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.add_directory("nested/", opts).unwrap();
    z.start_file("README.txt", opts).unwrap();
    z.write_all(b"not json").unwrap();
    for f in valid_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        z.start_file(format!("nested/{name}"), opts).unwrap();
        z.write_all(&std::fs::read(&f).unwrap()).unwrap();
    }
    z.finish().unwrap();
}

fn imported() -> (tempfile::TempDir, PathBuf, ImportReport) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("vuln.db");
    let report = import(&[data("valid")], &out).unwrap();
    (tmp, out, report)
}

#[test]
fn directory_import_reports_and_opens() {
    let (_tmp, out, report) = imported();
    assert_eq!(report, expected_report());
    let db = VulnDb::open(&out).unwrap();
    let st = db.status().unwrap();
    assert_eq!((st.advisories, st.affected, st.format), (7, 9, berth_vulndb::FORMAT));
    assert_eq!(st.ecosystems, expected_report().ecosystems);
    assert_eq!(st.source_updated_at.as_deref(), Some("2024-06-01T00:00:00Z"));
    let imported_at: jiff::Timestamp = st.imported_at.parse().unwrap();
    assert!((jiff::Timestamp::now().as_second() - imported_at.as_second()).abs() < 600);
}

#[test]
fn zip_import_matches_directory_import() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    make_zip(&zip);
    let out = tmp.path().join("from-zip.db");
    assert_eq!(import(std::slice::from_ref(&zip), &out).unwrap(), expected_report());
    // A zip found inside a directory is read too.
    let dir = tmp.path().join("dumps");
    std::fs::create_dir(&dir).unwrap();
    std::fs::rename(&zip, dir.join("Debian-all.ZIP")).unwrap();
    let out2 = tmp.path().join("from-dir.db");
    assert_eq!(import(&[dir], &out2).unwrap(), expected_report());
    let a = VulnDb::open(&out).unwrap().lookup("Debian:12", "openssl").unwrap();
    let b = VulnDb::open(&out2).unwrap().lookup("Debian:12", "openssl").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
}

#[test]
fn single_files_and_several_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("one.db");
    let r = import(&[data("valid/misc/ubuntu-array.json")], &out).unwrap();
    assert_eq!((r.advisories, r.affected, r.files, r.duplicates_replaced), (3, 3, 1, 0));
    let db = VulnDb::open(&out).unwrap();
    let zlib = db.lookup("Debian:12", "zlib").unwrap();
    assert_eq!(zlib.len(), 1);
    assert_eq!(zlib[0].affected.ranges[0].events, [Event::Introduced("0".into())]);

    // The same records named file by file: the same database as the directory walk.
    let out = tmp.path().join("many.db");
    assert_eq!(import(&valid_files(), &out).unwrap(), expected_report());
}

#[test]
fn lookups() {
    let (_tmp, out, _) = imported();
    let db = VulnDb::open(&out).unwrap();

    let openssl = db.lookup("Debian:12", "openssl").unwrap();
    let ids: Vec<&str> = openssl.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["DEBIAN-CVE-2023-1001", "DEBIAN-CVE-2023-1002"]);
    let a = &openssl[0];
    assert_eq!(a.ecosystem, "Debian:12");
    assert_eq!(a.package, "openssl");
    assert_eq!(a.upstream, ["CVE-2023-1001"]);
    assert_eq!(a.modified, "2024-03-01T10:00:00Z");
    assert_eq!(a.published.as_deref(), Some("2023-05-02T00:00:00Z"));
    assert_eq!(a.summary.as_deref(), Some("openssl: hand-written test advisory"));
    assert_eq!(a.vendor_severity.as_deref(), Some("low"));
    assert_eq!(a.severity[0].kind, "CVSS_V3");
    assert!(a.severity[0].score.starts_with("CVSS:3.1/AV:N"));
    assert_eq!(a.references, ["https://security-tracker.debian.org/tracker/CVE-2023-1001"]);
    assert_eq!(a.affected.versions, ["3.0.9-1", "3.0.11-1~deb12u1"]);
    assert_eq!(a.affected.ranges.len(), 1);
    assert_eq!(a.affected.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(a.affected.ranges[0].events, [Event::Introduced("0".into()), Event::Fixed("3.0.11-1~deb12u2".into())]);
    assert_eq!(openssl[1].vendor_severity.as_deref(), Some("unimportant"));

    let old = db.lookup("Debian:11", "openssl").unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].vendor_severity.as_deref(), Some("not yet assigned"));
    assert!(old[0].affected.versions.is_empty());

    // The newer copy of a duplicate replaced the older one entirely (Alpine:v3.18 is gone),
    // and an older copy was ignored (no zlib).
    let busybox = db.lookup("Alpine:v3.19", "busybox").unwrap();
    assert_eq!(busybox.len(), 1);
    assert_eq!(busybox[0].summary.as_deref(), Some("a newer copy: replaces the one in alpine/"));
    assert!(db.lookup("Alpine:v3.18", "busybox").unwrap().is_empty());
    assert!(db.lookup("Debian:12", "zlib").unwrap().is_empty());
    assert_eq!(db.lookup("Debian:12", "glibc").unwrap()[0].id, "DEBIAN-CVE-2023-1002");

    // PyPI: normalised on both sides; two spellings in one record merge into one entry.
    for name in ["foo-bar-baz", "Foo_Bar.Baz", "FOO...BAR__baz"] {
        let hits = db.lookup("PyPI", name).unwrap();
        let ids: Vec<&str> = hits.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["GHSA-aaaa-bbbb-cccc", "PYSEC-2024-3001"], "{name}");
    }
    let pypi = db.lookup("PyPI", "foo-bar-baz").unwrap();
    assert_eq!(pypi[0].vendor_severity.as_deref(), Some("MODERATE"));
    assert_eq!(pypi[0].affected.ranges[0].events[2], Event::Limit("3.0".into()));
    let pysec = &pypi[1];
    assert_eq!(pysec.package, "Foo_Bar.Baz");
    assert_eq!(pysec.aliases, ["CVE-2024-3001", "GHSA-aaaa-bbbb-cccc"]);
    let kinds: Vec<RangeKind> = pysec.affected.ranges.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [RangeKind::Ecosystem, RangeKind::Git, RangeKind::Semver]);
    assert_eq!(pysec.affected.ranges[2].events[1], Event::LastAffected("2.1.0".into()));
    assert_eq!(pysec.vendor_severity, None);
    // Timestamps are kept as written.
    assert_eq!(pysec.modified, "2024-01-10T08:00:00+01:00");

    // Other ecosystems compare exactly.
    assert_eq!(db.lookup("crates.io", "Some_Crate").unwrap()[0].vendor_severity.as_deref(), Some("high"));
    assert!(db.lookup("crates.io", "some-crate").unwrap().is_empty());
    assert!(db.lookup("crates.io", "some_crate").unwrap().is_empty());

    // Ubuntu's own rating stays in `severity`.
    let curl = db.lookup("Ubuntu:22.04:LTS", "curl").unwrap();
    assert_eq!((curl[0].severity[0].kind.as_str(), curl[0].severity[0].score.as_str()), ("Ubuntu", "medium"));
    assert_eq!(curl[0].vendor_severity, None);

    // Withdrawn: gone.
    assert!(db.lookup("npm", "left-pad").unwrap().is_empty());

    // Through the trait, as the matcher asks.
    let src: &dyn AdvisorySource = &db;
    assert_eq!(src.advisories("Debian:12", "openssl").unwrap().len(), 2);
    assert!(src.has_ecosystem("Debian:12").unwrap());
    assert!(src.has_ecosystem("Ubuntu:22.04:LTS").unwrap());
    assert!(src.has_ecosystem("crates.io").unwrap());
    assert!(!src.has_ecosystem("Debian").unwrap());
    assert!(!src.has_ecosystem("debian:12").unwrap());
    assert!(!src.has_ecosystem("npm").unwrap(), "only a withdrawn record named npm");
    assert!(!src.has_ecosystem("Alpine:v3.18").unwrap(), "only a replaced record named it");
}

#[test]
fn withdrawal_wins_when_newer_in_either_order() {
    let tmp = tempfile::tempdir().unwrap();
    let live = r#"{"id":"W-1","modified":"2024-01-01T00:00:00Z",
        "affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    let gone = r#"{"id":"W-1","modified":"2024-02-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z"}"#;
    let keep = r#"{"id":"K-1","modified":"2024-01-01T00:00:00Z",
        "affected":[{"package":{"ecosystem":"npm","name":"y"},"versions":["1.0.0"]}]}"#;
    for (n, order) in [[live, gone], [gone, live]].iter().enumerate() {
        let file = tmp.path().join(format!("w{n}.json"));
        std::fs::write(&file, format!("[{}, {}, {keep}]", order[0], order[1])).unwrap();
        let out = tmp.path().join(format!("w{n}.db"));
        let r = import(&[file], &out).unwrap();
        assert_eq!((r.advisories, r.withdrawn_skipped, r.duplicates_replaced), (1, 1, 1), "order {n}");
        let db = VulnDb::open(&out).unwrap();
        assert!(db.lookup("npm", "x").unwrap().is_empty(), "order {n}");
        assert_eq!(db.lookup("npm", "y").unwrap().len(), 1);
    }
}

/// `(fixture, record index, id, words in the message)`.
const INVALID: &[(&str, Option<usize>, Option<&str>, &str)] = &[
    ("not-json.json", None, None, "not valid JSON"),
    ("not-object.json", None, None, "an array of records"),
    ("array-item-not-object.json", Some(1), None, "must be a JSON object, found a string"),
    ("missing-id.json", None, None, "id is missing"),
    ("missing-modified.json", None, Some("NOMOD-1"), "modified is missing"),
    ("bad-modified.json", None, Some("BADTIME-1"), "not an RFC 3339 timestamp"),
    ("ill-typed-aliases.json", None, Some("ALIAS-1"), "aliases: expected an array, found a string"),
    ("unknown-range-type.json", None, Some("RANGE-1"), "affected[0].ranges[0].type: unknown range type \"DATES\""),
    ("event-two-keys.json", None, Some("EVENT-1"), "events[0]: an event must have exactly one key, found 2"),
    ("event-no-key.json", None, Some("EVENT-2"), "events[1]: an event must have exactly one key, found 0"),
    ("no-introduced.json", None, Some("INTRO-1"), "an ECOSYSTEM range needs an \"introduced\" event"),
    ("package-without-name.json", None, Some("PKG-1"), "affected[0].package.name is missing"),
];

#[test]
fn invalid_records_fail_the_import_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, record, id, words) in INVALID {
        let out = tmp.path().join(format!("{file}.db"));
        // Valid records come first, so the database has been written to before the failure.
        let err = import(&[data("valid"), data(&format!("invalid/{file}"))], &out).unwrap_err();
        let ImportError::Invalid { location, record: r, id: i, message } = &err else {
            panic!("{file}: {err}");
        };
        assert_eq!(location.file, data(&format!("invalid/{file}")), "{file}");
        assert_eq!(location.entry, None);
        assert_eq!(r, record, "{file}");
        assert_eq!(i.as_deref(), *id, "{file}");
        assert!(message.contains(words), "{file}: {message}");
        let shown = err.to_string();
        assert!(shown.contains(file), "{shown}");
        if let Some(id) = id {
            assert!(shown.contains(id), "{shown}");
        }
        assert!(!out.exists(), "{file}: output left behind");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn invalid_zip_entry_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("GOOD-1.json", opts).unwrap();
    z.write_all(br#"{"id":"GOOD-1","modified":"2024-01-01T00:00:00Z"}"#).unwrap();
    z.start_file("EVENT-1.json", opts).unwrap();
    z.write_all(&std::fs::read(data("invalid/event-two-keys.json")).unwrap()).unwrap();
    z.finish().unwrap();
    let out = tmp.path().join("out.db");
    let err = import(std::slice::from_ref(&zip), &out).unwrap_err();
    assert!(matches!(&err, ImportError::Invalid { location, .. } if location.entry.as_deref() == Some("EVENT-1.json")));
    let shown = err.to_string();
    assert!(shown.contains("all.zip (entry EVENT-1.json)") && shown.contains("EVENT-1"), "{shown}");
    assert!(!out.exists());
}

#[test]
fn broken_sources_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.db");

    // A truncated zip.
    let zip = tmp.path().join("cut.zip");
    make_zip(&zip);
    let bytes = std::fs::read(&zip).unwrap();
    std::fs::write(&zip, &bytes[..bytes.len() / 2]).unwrap();
    let err = import(&[zip], &out).unwrap_err();
    assert!(matches!(err, ImportError::Zip { .. }), "{err}");
    assert!(!out.exists());

    // A stored entry whose bytes changed after it was written: its checksum fails.
    let zip = tmp.path().join("flipped.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("F-1.json", stored).unwrap();
    z.write_all(br#"{"id":"F-1","modified":"2024-01-01T00:00:00Z","summary":"aaaa"}"#).unwrap();
    z.finish().unwrap();
    let mut bytes = std::fs::read(&zip).unwrap();
    let at = bytes.windows(4).position(|w| w == b"aaaa").unwrap();
    bytes[at] = b'b';
    std::fs::write(&zip, &bytes).unwrap();
    let err = import(&[zip], &out).unwrap_err();
    assert!(
        matches!(&err, ImportError::Zip { location, .. } if location.entry.as_deref() == Some("F-1.json")),
        "{err}"
    );
    assert!(!out.exists());

    // Deep nesting, inside a record and as the document itself: refused, no stack overflow.
    for (n, text) in [
        format!(
            r#"{{"id":"D-1","modified":"2024-01-01T00:00:00Z","x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ]
    .iter()
    .enumerate()
    {
        let deep = tmp.path().join(format!("deep{n}.json"));
        std::fs::write(&deep, text).unwrap();
        let err = import(&[deep], &out).unwrap_err();
        assert!(matches!(&err, ImportError::Invalid { message, .. } if message.contains("recursion limit")), "{err}");
        assert!(!out.exists());
    }

    // A missing source.
    let err = import(&[tmp.path().join("nope.json")], &out).unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }), "{err}");
    assert!(!out.exists());

    // No records: an empty directory, an empty array.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(import(std::slice::from_ref(&empty), &out), Err(ImportError::NoRecords)));
    std::fs::write(empty.join("none.json"), "[]").unwrap();
    assert!(matches!(import(&[empty], &out), Err(ImportError::NoRecords)));
    assert!(matches!(import(&[], &out), Err(ImportError::NoRecords)));
    assert!(!out.exists());

    // An existing output is refused and left as it was.
    std::fs::write(&out, "precious").unwrap();
    assert!(matches!(import(&[data("valid")], &out), Err(ImportError::OutputExists(_))));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");
}

#[test]
fn oversized_documents_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.db");
    // A sparse file one byte over the limit.
    let big = tmp.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len(MAX_DOCUMENT_BYTES + 1).unwrap();
    let err = import(std::slice::from_ref(&big), &out).unwrap_err();
    assert!(matches!(&err, ImportError::TooLarge { location, .. } if location.file == big), "{err}");
    assert!(!out.exists());

    // One record over its own limit, second in an array: named by its index.
    let huge = tmp.path().join("huge-record.json");
    let details = "x".repeat(berth_vulndb::MAX_RECORD_BYTES);
    std::fs::write(
        &huge,
        format!(r#"[{{"id":"A-1","modified":"2024-01-01T00:00:00Z"}}, {{"id":"A-2","details":"{details}"}}]"#),
    )
    .unwrap();
    let err = import(&[huge], &out).unwrap_err();
    assert!(
        matches!(&err, ImportError::Invalid { record: Some(1), message, .. } if message.contains("larger than the limit")),
        "{err}"
    );
    assert!(!out.exists());

    // A zip entry that inflates past the limit (stored small: zeros compress well).
    let zip = tmp.path().join("bomb.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    z.start_file("BOMB.json", zip::write::SimpleFileOptions::default().large_file(true)).unwrap();
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..=(MAX_DOCUMENT_BYTES >> 20) {
        z.write_all(&zeros).unwrap();
    }
    z.finish().unwrap();
    assert!(std::fs::metadata(&zip).unwrap().len() < 1 << 20);
    let err = import(&[zip], &out).unwrap_err();
    assert!(
        matches!(&err, ImportError::TooLarge { location, .. } if location.entry.as_deref() == Some("BOMB.json")),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn open_refuses_what_is_not_a_complete_database() {
    let (tmp, good, _) = imported();
    let copy = |name: &str| {
        let p = tmp.path().join(name);
        std::fs::copy(&good, &p).unwrap();
        p
    };

    let partial = copy("partial.db");
    rusqlite::Connection::open(&partial).unwrap().execute("DELETE FROM meta WHERE key = 'complete'", []).unwrap();
    assert!(matches!(VulnDb::open(&partial), Err(OpenError::Incomplete { .. })));

    let future = copy("future.db");
    rusqlite::Connection::open(&future)
        .unwrap()
        .execute("UPDATE meta SET value = '99' WHERE key = 'format'", [])
        .unwrap();
    assert!(matches!(VulnDb::open(&future), Err(OpenError::Format { .. })));

    let other = tmp.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE meta (key TEXT, value TEXT)").unwrap();
    assert!(matches!(VulnDb::open(&other), Err(OpenError::NotVulnDb { .. })));

    let text = tmp.path().join("text.db");
    std::fs::write(&text, "this is not SQLite, just some text that is long enough to look like a header").unwrap();
    assert!(matches!(VulnDb::open(&text), Err(OpenError::NotVulnDb { .. })));

    let truncated = copy("truncated.db");
    std::fs::File::options().write(true).open(&truncated).unwrap().set_len(1024).unwrap();
    assert!(VulnDb::open(&truncated).is_err());

    assert!(matches!(VulnDb::open(&tmp.path().join("missing.db")), Err(OpenError::Io { .. })));
    VulnDb::open(&good).unwrap();
}

#[test]
fn shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<VulnDb>();

    let (_tmp, out, _) = imported();
    let db = Arc::new(VulnDb::open_with(&out, 2).unwrap());
    let expected = db.lookup("PyPI", "foo-bar-baz").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = Arc::clone(&db);
            let expected = expected.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let name = if (i + t) % 2 == 0 { "Foo_Bar.Baz" } else { "foo-bar-baz" };
                    assert_eq!(db.lookup("PyPI", name).unwrap(), expected);
                    assert_eq!(db.lookup("Debian:12", "openssl").unwrap().len(), 2);
                    assert!(db.has_ecosystem("Alpine:v3.19").unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.status().unwrap().advisories, 7);
}

#[test]
fn changed_packages_between_generations() {
    let (tmp, first, _) = imported();
    let update = tmp.path().join("update.json");
    std::fs::write(
        &update,
        r#"[
        {"id":"DEBIAN-CVE-2023-1002","modified":"2024-07-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.15-1"}]}]}]},
        {"id":"GHSA-nnnn-nnnn-nnnn","modified":"2024-07-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"npm","name":"new-pkg"},"versions":["1.0.0"]}]},
        {"id":"OSV-2024-4001","modified":"2024-07-01T00:00:00Z","withdrawn":"2024-07-01T00:00:00Z"}
        ]"#,
    )
    .unwrap();
    let second = tmp.path().join("second.db");
    import(&[data("valid"), update], &second).unwrap();
    let (old, new) = (VulnDb::open(&first).unwrap(), VulnDb::open(&second).unwrap());
    let expected: Vec<(String, String)> = [
        ("Debian:12", "glibc"),      // its advisory no longer names it
        ("Debian:12", "openssl"),    // fixed now
        ("crates.io", "Some_Crate"), // its advisory was withdrawn
        ("npm", "new-pkg"),          // new
    ]
    .iter()
    .map(|(e, n)| ((*e).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(new.changed_packages(&old).unwrap(), expected);
    assert_eq!(old.changed_packages(&new).unwrap(), expected);
    assert!(new.changed_packages(&new).unwrap().is_empty());
    let again = tmp.path().join("again.db");
    import(&[data("valid")], &again).unwrap();
    assert!(VulnDb::open(&again).unwrap().changed_packages(&old).unwrap().is_empty());
}
