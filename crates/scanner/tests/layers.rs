//! The layer walk end to end: tar layers built in memory, plain, gzip and zstd.

mod layers_support;

use std::io::Read;

use berth_scanner::{LayerError, Limits, scan_layer};
use layers_support::{E, elf_with_section, go_binary, gzip, summary, tar_of, zip_of, zlib, zstd};

const OS_RELEASE: &[u8] =
    b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
const DPKG: &[u8] = b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
const APK: &[u8] = b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n";
const RPMDB: &[u8] = include_bytes!("../testdata/layers/rpmdb.sqlite");
const AUDIT: &str = r#"{"packages":[{"name":"app","version":"0.1.0","source":"local","dependencies":[1],"root":true},{"name":"regex","version":"1.10.2","source":"crates.io"}]}"#;

fn everything() -> Vec<u8> {
    let jar = zip_of(&[(
        "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
        b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
    )]);
    let go = go_binary("go1.21.3", "mod\texample.com/app\tv1.0.0\t\ndep\tgolang.org/x/text\tv0.13.0\th1:x\n");
    let rust = elf_with_section(".dep-v0", &zlib(AUDIT.as_bytes()));
    tar_of(&[
        E::Dir("./etc/"),
        E::File("./etc/os-release", OS_RELEASE),
        E::File("./var/lib/dpkg/status", DPKG),
        E::File("./var/lib/dpkg/status.d/tzdata", b"Package: tzdata\nVersion: 2024a-0+deb12u1\n"),
        E::File("./var/lib/dpkg/status.d/tzdata.md5sums", b"abc  usr/share/zoneinfo/UTC\n"),
        E::File("./lib/apk/db/installed", APK),
        E::File("./var/lib/rpm/rpmdb.sqlite", RPMDB),
        E::File("./usr/share/rpm/Packages", b"\0\0\0\0bdb"),
        E::File(
            "./usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            b"Name: requests\nVersion: 2.31.0\n",
        ),
        E::File("./app/node_modules/@scope/pkg/package.json", br#"{"name":"@scope/pkg","version":"1.0.0"}"#),
        E::File("./app/node_modules/left-pad/package.json", br#"{"name":"left-pad","version":"1.3.0"}"#),
        E::File("./app/package.json", br#"{"name":"the-app","version":"9.9.9"}"#),
        E::File(
            "./usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
            b"s.name = \"rake\".freeze\ns.version = \"13.0.6\"\n",
        ),
        E::File("./opt/app/lib/log4j-core.jar", &jar),
        E::Exec("./usr/local/bin/goapp", &go),
        E::File("./usr/local/bin/rustapp", &rust),
        E::Exec("./usr/bin/script", b"#!/bin/sh\necho this is not ELF, and is long enough to be looked at\n"),
    ])
}

fn strings(v: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    v.iter().map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into())).collect()
}

#[test]
fn every_detector_in_one_layer_three_compressions() {
    let tar = everything();
    let plain = scan_layer(&tar[..], &Limits::default()).unwrap();
    let want = strings(&[
        ("CARGO", "regex", "1.10.2", "usr/local/bin/rustapp"),
        ("GEMSPEC", "rake", "13.0.6", "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec"),
        ("GOBINARY", "example.com/app", "v1.0.0", "usr/local/bin/goapp"),
        ("GOBINARY", "golang.org/x/text", "v0.13.0", "usr/local/bin/goapp"),
        ("GOBINARY", "stdlib", "1.21.3", "usr/local/bin/goapp"),
        ("JAR", "org.apache.logging.log4j:log4j-core", "2.14.1", "opt/app/lib/log4j-core.jar"),
        ("NODEPKG", "@scope/pkg", "1.0.0", "app/node_modules/@scope/pkg/package.json"),
        ("NODEPKG", "left-pad", "1.3.0", "app/node_modules/left-pad/package.json"),
        ("OS", "berth-demo", "1:1.2.3-4.el9", "var/lib/rpm/rpmdb.sqlite"),
        ("OS", "berth-tools", "0:0.9-1", "var/lib/rpm/rpmdb.sqlite"),
        ("OS", "libssl3", "3.0.11-1~deb12u2", "var/lib/dpkg/status"),
        ("OS", "musl", "1.2.4-r2", "lib/apk/db/installed"),
        ("OS", "tzdata", "2024a-0+deb12u1", "var/lib/dpkg/status.d/tzdata"),
        ("PYTHONPKG", "requests", "2.31.0", "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"),
    ]);
    assert_eq!(summary(&plain), want);
    assert_eq!(plain.os_release.len(), 1);
    assert_eq!(plain.os_release[0].0, "etc/os-release");
    assert_eq!(plain.os_release[0].1.version_id.as_deref(), Some("12"));
    assert_eq!(
        plain.unsupported,
        [("usr/share/rpm/Packages".to_owned(), "rpm Berkeley DB package databases are not supported".to_owned())]
    );
    assert!(plain.skipped.is_empty(), "{:?}", plain.skipped);
    // The rpm fields ECR reports apart.
    let rpm = plain.sources.iter().find(|s| s.path == "var/lib/rpm/rpmdb.sqlite").unwrap();
    let demo = rpm.packages.iter().find(|p| p.name == "berth-demo").unwrap();
    assert_eq!((demo.epoch, demo.release.as_deref(), demo.arch.as_deref()), (Some(1), Some("4.el9"), Some("noarch")));
    assert_eq!(demo.source_name.as_deref(), Some("berth-demo"));

    assert_eq!(scan_layer(&gzip(&tar)[..], &Limits::default()).unwrap(), plain);
    assert_eq!(scan_layer(&zstd(&tar)[..], &Limits::default()).unwrap(), plain);
    // Concatenated gzip members and zstd frames (pigz, zstd:chunked) read as one stream.
    let half = tar.len() / 2;
    let mut members = gzip(&tar[..half]);
    members.extend(gzip(&tar[half..]));
    assert_eq!(scan_layer(&members[..], &Limits::default()).unwrap(), plain);
    let mut frames = zstd(&tar[..half]);
    frames.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]); // a skippable frame
    frames.extend(zstd(&tar[half..]));
    assert_eq!(scan_layer(&frames[..], &Limits::default()).unwrap(), plain);
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let tar = tar_of(&[
        E::File("./var/lib/dpkg/.wh.status", b""),
        E::File("usr/lib/node_modules/.wh..wh..opq", b""),
        E::RawName(b"/.wh.opt", b""),
        E::File("a/.wh..wh.plnk", b""),
        E::File("usr/lib/node_modules/x/package.json", br#"{"name":"x","version":"1"}"#),
    ]);
    let inv = scan_layer(&tar[..], &Limits::default()).unwrap();
    assert_eq!(inv.whiteouts, ["opt", "var/lib/dpkg/status"]);
    assert_eq!(inv.opaque_dirs, ["usr/lib/node_modules"]);
    assert_eq!(inv.sources.len(), 1, "the layer's own entries under an opaque dir stay");
}

#[test]
fn links_are_not_followed_and_later_entries_replace() {
    let tar = tar_of(&[
        E::File("usr/lib/os-release", OS_RELEASE),
        E::Symlink("etc/os-release", "../usr/lib/os-release"),
        E::Hardlink("var/lib/dpkg/status", "usr/lib/os-release"),
        E::File("lib/apk/db/installed", APK),
        E::Symlink("lib/apk/db/installed", "/elsewhere"),
        E::File("app/node_modules/a/package.json", br#"{"name":"a","version":"1.0.0"}"#),
        E::File("app/node_modules/a/package.json", br#"{"name":"a","version":"2.0.0"}"#),
    ]);
    let inv = scan_layer(&tar[..], &Limits::default()).unwrap();
    let paths: Vec<&str> = inv.os_release.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["usr/lib/os-release"]);
    assert_eq!(
        summary(&inv),
        strings(&[("NODEPKG", "a", "2.0.0", "app/node_modules/a/package.json")]),
        "the symlink replaced the apk database; the second package.json the first"
    );
}

#[test]
fn unsafe_paths_and_caps_are_skipped_not_errors() {
    let big = vec![b'x'; 5000];
    let tar = tar_of(&[
        E::RawName(b"../etc/os-release", OS_RELEASE),
        E::RawName(b"a/../../var/lib/dpkg/status", DPKG),
        E::RawName(b"bad\xff/name", b"x"),
        E::File("var/lib/dpkg/status", &big),
        E::File("etc/os-release", OS_RELEASE),
    ]);
    let limits = Limits { metadata_file: 4096, ..Limits::default() };
    let inv = scan_layer(&tar[..], &limits).unwrap();
    let skipped: Vec<&str> = inv.skipped.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        skipped,
        ["../etc/os-release", "a/../../var/lib/dpkg/status", "bad\u{fffd}/name", "var/lib/dpkg/status"]
    );
    assert!(inv.skipped[3].1.contains("4096"), "{:?}", inv.skipped[3]);
    assert!(inv.sources.is_empty());
    assert_eq!(inv.os_release.len(), 1);
    // The list of skips is capped; the rest are counted.
    let many: Vec<Vec<u8>> = (0..20).map(|i| format!("../x{i}").into_bytes()).collect();
    let entries: Vec<E<'_>> = many.iter().map(|n| E::RawName(n, b"")).collect();
    let inv = scan_layer(&tar_of(&entries)[..], &Limits { recorded_skips: 5, ..Limits::default() }).unwrap();
    assert_eq!(inv.skipped.len(), 6);
    assert_eq!(inv.skipped[5].1, "15 more skipped files not listed");
}

#[test]
fn limits_on_the_whole_layer() {
    let tar = everything();
    let few = Limits { entries: 3, ..Limits::default() };
    assert!(matches!(scan_layer(&tar[..], &few), Err(LayerError::TooManyEntries(3))));
    let small = Limits { decompressed: 10_000, ..Limits::default() };
    let err = scan_layer(&gzip(&tar)[..], &small).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge(10_000)), "{err}");
    // Exactly at the cap is fine.
    let exact = Limits { decompressed: tar.len() as u64, ..Limits::default() };
    assert!(scan_layer(&tar[..], &exact).is_ok());
}

#[test]
fn long_names_within_budget_and_over_it() {
    let long = format!("app/node_modules/{}/package.json", "n".repeat(300));
    let tar = tar_of(&[E::File(&long, br#"{"name":"n","version":"1"}"#)]);
    let inv = scan_layer(&tar[..], &Limits::default()).unwrap();
    assert_eq!(inv.sources[0].path, long);
    let tight = Limits { header_bytes: 600, ..Limits::default() };
    let err = scan_layer(&tar[..], &tight).unwrap_err();
    assert!(matches!(err, LayerError::HeadersTooLarge(600)), "{err}");
}

#[test]
fn empty_and_end_of_archive_only() {
    assert_eq!(scan_layer(&[][..], &Limits::default()).unwrap(), Default::default());
    assert_eq!(scan_layer(&[0u8; 1024][..], &Limits::default()).unwrap(), Default::default());
    assert_eq!(scan_layer(&gzip(&[])[..], &Limits::default()).unwrap(), Default::default());
}

#[test]
fn corrupt_streams_are_errors() {
    let tar = everything();
    let gz = gzip(&tar);
    let zs = zstd(&tar);
    for (what, bytes) in [
        ("garbage", b"this is not a layer at all, not even close. ".repeat(30)),
        ("truncated gzip", gz[..gz.len() / 2].to_vec()),
        ("truncated zstd", zs[..zs.len() / 2].to_vec()),
        ("truncated tar", tar[..tar.len() / 2 + 100].to_vec()),
        ("gzip of garbage", gzip(&[7u8; 4096])),
        ("gzip magic then garbage", [&[0x1f, 0x8b][..], &[0x55; 100][..]].concat()),
        ("zstd magic then garbage", [&[0x28, 0xb5, 0x2f, 0xfd][..], &[0x55; 100][..]].concat()),
    ] {
        match scan_layer(&bytes[..], &Limits::default()) {
            Err(LayerError::Corrupt(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// Mutations of real layers: every result is an inventory or an error, never a panic or hang.
#[test]
fn fuzz_ish_mutations_never_panic() {
    let tar = everything();
    let inputs = [tar.clone(), gzip(&tar), zstd(&tar)];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut outcomes = [0usize; 2];
    for round in 0..300 {
        let base = &inputs[round % inputs.len()];
        let mut m = base.clone();
        let len = m.len() as u64;
        match next() % 3 {
            0 => {
                for _ in 0..1 + next() % 8 {
                    let i = usize::try_from(next() % len).unwrap();
                    m[i] ^= u8::try_from(1 + next() % 255).unwrap();
                }
            }
            1 => m.truncate(usize::try_from(next() % len).unwrap()),
            _ => {
                let i = usize::try_from(next() % len).unwrap();
                let n = usize::try_from(next() % 2048).unwrap().min(m.len() - i);
                for b in &mut m[i..i + n] {
                    *b = u8::try_from(next() & 0xff).unwrap();
                }
            }
        }
        outcomes[usize::from(scan_layer(&m[..], &Limits::default()).is_err())] += 1;
    }
    assert!(outcomes[1] > 0, "some mutations must be refused: {outcomes:?}");
}

/// A reader that fails is reported as a read failure, not as a damaged layer.
#[test]
fn input_errors_are_read_errors() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(0x1f);
            self.0 -= n;
            Ok(n)
        }
    }
    let err = scan_layer(Failing(0), &Limits::default()).unwrap_err();
    assert!(matches!(err, LayerError::Read(_)), "{err}");
    let gz = gzip(&everything());
    let err = scan_layer((&gz[..100]).chain(Failing(0)), &Limits::default()).unwrap_err();
    assert!(matches!(err, LayerError::Read(_)), "{err}");
}

/// One byte at a time (a slow network): the same result.
#[test]
fn tiny_reads() {
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let tar = everything();
    let gz = gzip(&tar);
    let want = scan_layer(&tar[..], &Limits::default()).unwrap();
    assert_eq!(scan_layer(Trickle(&gz), &Limits::default()).unwrap(), want);
}

/// rpm writes its database in WAL mode (header bytes 18 and 19 are 2), as every rpm 4.16+
/// image holds it; the packages are read all the same.
#[test]
fn an_rpm_database_in_wal_mode_is_read() {
    let mut wal = RPMDB.to_vec();
    wal[18] = 2;
    wal[19] = 2;
    let packages = berth_scanner::layer::rpm::scan_sqlite(&wal, "var/lib/rpm/rpmdb.sqlite").unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"berth-demo") && names.contains(&"berth-tools"), "{names:?}");
}
