//! The matcher over an in-memory advisory source.

use berth_scanner::advisory::BoxError;
use berth_scanner::matcher::{Finding, MatchOutcome, match_image, os_ecosystem};
use berth_scanner::severity::Severity;
use berth_scanner::{
    Advisory, AdvisorySource, Affected, Event, ImageInventory, ImagePackage, OsRelease, Package, PackageManager, Range,
    RangeKind, SeverityScore,
};
use std::cell::Cell;

#[derive(Default)]
struct Mem {
    advisories: Vec<Advisory>,
    queries: Cell<usize>,
}

impl AdvisorySource for Mem {
    fn advisories(&self, ecosystem: &str, package: &str) -> Result<Vec<Advisory>, BoxError> {
        self.queries.set(self.queries.get() + 1);
        Ok(self.advisories.iter().filter(|a| a.ecosystem == ecosystem && a.package == package).cloned().collect())
    }
    fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, BoxError> {
        Ok(self.advisories.iter().any(|a| a.ecosystem == ecosystem))
    }
}

struct Failing;

impl AdvisorySource for Failing {
    fn advisories(&self, _: &str, _: &str) -> Result<Vec<Advisory>, BoxError> {
        Err("database is gone".into())
    }
    fn has_ecosystem(&self, _: &str) -> Result<bool, BoxError> {
        Ok(true)
    }
}

fn adv(id: &str, eco: &str, package: &str, events: Vec<Event>) -> Advisory {
    Advisory {
        id: id.into(),
        aliases: Vec::new(),
        upstream: Vec::new(),
        summary: Some(format!("summary of {id}")),
        details: Some(format!("details of {id}")),
        published: Some("2024-01-01T00:00:00Z".into()),
        modified: "2024-02-01T00:00:00Z".into(),
        severity: Vec::new(),
        references: vec![format!("https://example.org/{id}")],
        ecosystem: eco.into(),
        package: package.into(),
        affected: Affected { ranges: vec![Range { kind: RangeKind::Ecosystem, events }], versions: Vec::new() },
        vendor_severity: None,
    }
}

fn intro(v: &str) -> Event {
    Event::Introduced(v.into())
}
fn fixed(v: &str) -> Event {
    Event::Fixed(v.into())
}

fn os(id: &str, version: &str) -> OsRelease {
    OsRelease { id: id.into(), version_id: Some(version.into()), codename: None, pretty_name: None }
}

fn pkg(manager: PackageManager, name: &str, version: &str, path: &str) -> Package {
    Package {
        manager,
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        arch: None,
        epoch: None,
        release: None,
        path: path.into(),
    }
}

fn deb(name: &str, version: &str, source: Option<(&str, Option<&str>)>) -> Package {
    let mut p = pkg(PackageManager::Os, name, version, "var/lib/dpkg/status");
    if let Some((s, v)) = source {
        p.source_name = Some(s.into());
        p.source_version = v.map(str::to_owned);
    }
    p
}

fn image(os: Option<OsRelease>, packages: Vec<Package>) -> ImageInventory {
    ImageInventory {
        os,
        packages: packages.into_iter().enumerate().map(|(i, package)| ImagePackage { package, layer: i % 3 }).collect(),
        unsupported: Vec::new(),
    }
}

fn findings(outcome: MatchOutcome) -> Vec<Finding> {
    match outcome {
        MatchOutcome::Findings(f) => f,
        MatchOutcome::Unsupported(why) => panic!("unsupported: {why}"),
    }
}

fn ids(f: &[Finding]) -> Vec<(String, String)> {
    f.iter().map(|f| (f.vulnerability_id.clone(), f.package.name.clone())).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn os_ecosystems() {
    let pretty = |id: &str, v: Option<&str>| OsRelease {
        id: id.into(),
        version_id: v.map(str::to_owned),
        codename: None,
        pretty_name: None,
    };
    for (id, v, want) in [
        ("debian", Some("12"), Some("Debian:12")),
        ("debian", Some("11"), Some("Debian:11")),
        ("debian", None, None),
        ("ubuntu", Some("22.04"), Some("Ubuntu:22.04:LTS")),
        ("ubuntu", Some("24.04"), Some("Ubuntu:24.04:LTS")),
        ("ubuntu", Some("23.10"), Some("Ubuntu:23.10")),
        ("ubuntu", Some("23.04"), Some("Ubuntu:23.04")),
        ("alpine", Some("3.19.1"), Some("Alpine:v3.19")),
        ("alpine", Some("3.20.0_alpha20240329"), Some("Alpine:v3.20")),
        ("almalinux", Some("9.3"), Some("AlmaLinux:9")),
        ("rocky", Some("9.3"), Some("Rocky Linux:9")),
        ("amzn", Some("2023"), None),
        ("centos", Some("7"), None),
        ("ol", Some("9.3"), None),
        ("debian", Some("x"), None),
    ] {
        assert_eq!(os_ecosystem(&pretty(id, v)).as_deref(), want, "{id} {v:?}");
    }
}

#[test]
fn debian_matches_by_source_package_and_version() {
    let src = Mem {
        advisories: vec![
            {
                let mut a =
                    adv("DEBIAN-CVE-2024-0001", "Debian:12", "openssl", vec![intro("0"), fixed("3.0.11-1~deb12u2")]);
                a.upstream = vec!["CVE-2024-0001".into()];
                a.vendor_severity = Some("high".into());
                a
            },
            {
                let mut a = adv("DEBIAN-CVE-2024-0002", "Debian:12", "openssl", vec![intro("0")]);
                a.upstream = vec!["CVE-2024-0002".into()];
                a.severity = vec![SeverityScore {
                    kind: "CVSS_V3".into(),
                    score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
                }];
                a
            },
            adv("DEBIAN-CVE-2024-0003", "Debian:12", "openssl", vec![intro("0"), fixed("3.0.9-1")]),
            adv("DEBIAN-CVE-2024-0004", "Debian:11", "openssl", vec![intro("0")]),
            adv("DEBIAN-CVE-2024-0005", "Debian:12", "libssl3", vec![intro("0")]),
        ],
        ..Mem::default()
    };
    let inv = image(
        Some(os("debian", "12")),
        vec![
            deb("libssl3", "3.0.11-1~deb12u1", Some(("openssl", None))),
            deb("openssl", "3.0.11-1~deb12u1", None),
            // Binary version differs from the source's: the source's is compared.
            deb("libfoo", "1:2.0-1+b1", Some(("openssl", Some("3.0.11-1~deb12u3")))),
        ],
    );
    let f = findings(match_image(&inv, false, &src).unwrap());
    assert_eq!(
        ids(&f),
        pairs(&[
            ("CVE-2024-0001", "libssl3"),
            ("CVE-2024-0001", "openssl"),
            ("CVE-2024-0002", "libfoo"),
            ("CVE-2024-0002", "libssl3"),
            ("CVE-2024-0002", "openssl"),
        ])
    );
    let first = &f[0];
    assert_eq!(first.advisory_id, "DEBIAN-CVE-2024-0001");
    assert_eq!(first.fixed_in.as_deref(), Some("3.0.11-1~deb12u2"));
    assert_eq!(first.severity, Severity::High);
    assert_eq!(first.vendor_severity.as_deref(), Some("high"));
    assert_eq!(first.ecosystem, "Debian:12");
    assert_eq!(first.related, ["DEBIAN-CVE-2024-0001"]);
    assert_eq!(first.layer, 0);
    assert_eq!(first.description.as_deref(), Some("details of DEBIAN-CVE-2024-0001"));
    let crit = &f[2];
    assert_eq!(crit.severity, Severity::Critical);
    assert_eq!(crit.fixed_in, None);
    assert_eq!(crit.cvss.len(), 1);
    assert!((crit.cvss[0].base_score - 9.8).abs() < 1e-9);
    // One query per source package, not per binary package.
    assert_eq!(src.queries.get(), 1);
}

#[test]
fn records_naming_the_same_cve_are_merged() {
    let mut dsa = adv("DSA-5555-1", "Debian:12", "curl", vec![intro("0"), fixed("7.88.1-10+deb12u4")]);
    dsa.upstream = vec!["CVE-2023-0001".into(), "CVE-2023-0002".into()];
    dsa.modified = "2024-01-01T00:00:00Z".into();
    let mut cve1 = adv("DEBIAN-CVE-2023-0001", "Debian:12", "curl", vec![intro("0"), fixed("7.88.1-10+deb12u4")]);
    cve1.upstream = vec!["CVE-2023-0001".into()];
    cve1.modified = "2024-03-01T00:00:00Z".into();
    let mut cve2 = adv("DEBIAN-CVE-2023-0002", "Debian:12", "curl", vec![intro("0")]);
    cve2.upstream = vec!["CVE-2023-0002".into()];
    cve2.modified = "2024-06-01T00:00:00Z".into();
    let mut dla = adv("DLA-1234-1", "Debian:12", "curl", vec![intro("0"), fixed("7.88.1-10+deb12u4")]);
    dla.aliases = vec!["CVE-2023-0001".into()];
    dla.modified = "2023-01-01T00:00:00Z".into();
    let src = Mem { advisories: vec![dsa, cve1, cve2, dla], ..Mem::default() };
    let inv = image(Some(os("debian", "12")), vec![deb("curl", "7.88.1-10+deb12u1", None)]);
    let f = findings(match_image(&inv, false, &src).unwrap());
    assert_eq!(ids(&f), pairs(&[("CVE-2023-0001", "curl"), ("CVE-2023-0002", "curl")]));
    // Both with a fix: the newest record wins.
    assert_eq!(f[0].advisory_id, "DEBIAN-CVE-2023-0001");
    assert_eq!(f[0].related, ["CVE-2023-0002", "DEBIAN-CVE-2023-0001", "DLA-1234-1", "DSA-5555-1"]);
    // The one with a fix wins over a newer one without.
    assert_eq!(f[1].advisory_id, "DSA-5555-1");
    assert_eq!(f[1].fixed_in.as_deref(), Some("7.88.1-10+deb12u4"));
    assert!(f[1].related.contains(&"DEBIAN-CVE-2023-0002".to_owned()));
    assert!(!f[1].related.contains(&"CVE-2023-0002".to_owned()));
}

#[test]
fn basic_matches_os_packages_only_enhanced_adds_language_packages() {
    let mut ghsa = adv("GHSA-aaaa-bbbb-cccc", "PyPI", "requests", vec![intro("0"), fixed("2.31.0")]);
    ghsa.aliases = vec!["CVE-2023-32681".into(), "PYSEC-2023-74".into()];
    let src = Mem {
        advisories: vec![
            adv("ALPINE-CVE-2024-1", "Alpine:v3.19", "openssl", vec![intro("0"), fixed("3.1.4-r5")]),
            ghsa,
            adv("GO-2024-0001", "Go", "golang.org/x/net", vec![intro("0"), fixed("0.23.0")]),
            adv("GO-2024-0002", "Go", "stdlib", vec![intro("0"), fixed("1.21.9")]),
            adv("RUSTSEC-2024-0001", "crates.io", "tokio", vec![intro("1.0.0"), fixed("1.18.5")]),
            adv("GHSA-npm1", "npm", "lodash", vec![intro("0"), fixed("4.17.21")]),
            adv("GHSA-mvn1", "Maven", "org.apache.logging.log4j:log4j-core", vec![intro("2.0-beta9"), fixed("2.15.0")]),
            adv("GHSA-gem1", "RubyGems", "rack", vec![intro("0"), fixed("2.2.6.3")]),
        ],
        ..Mem::default()
    };
    let mut libssl = pkg(PackageManager::Os, "libssl3", "3.1.4-r4", "lib/apk/db/installed");
    libssl.source_name = Some("openssl".into());
    let inv = image(
        Some(os("alpine", "3.19.1")),
        vec![
            libssl,
            pkg(
                PackageManager::Python,
                "requests",
                "2.28.0",
                "usr/lib/python3/site-packages/requests-2.28.0.dist-info/METADATA",
            ),
            pkg(PackageManager::GoBinary, "golang.org/x/net", "v0.17.0", "usr/bin/app"),
            pkg(PackageManager::GoBinary, "stdlib", "go1.21.3", "usr/bin/app"),
            pkg(PackageManager::Cargo, "tokio", "1.18.4", "usr/bin/rs"),
            pkg(PackageManager::Npm, "lodash", "4.17.20", "app/node_modules/lodash/package.json"),
            pkg(PackageManager::Jar, "org.apache.logging.log4j:log4j-core", "2.14.1", "app/app.jar"),
            pkg(
                PackageManager::Gemspec,
                "rack",
                "2.2.6.2",
                "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.6.2.gemspec",
            ),
        ],
    );
    let basic = findings(match_image(&inv, false, &src).unwrap());
    assert_eq!(ids(&basic), pairs(&[("ALPINE-CVE-2024-1", "libssl3")]));
    assert_eq!(basic[0].fixed_in.as_deref(), Some("3.1.4-r5"));
    let enhanced = findings(match_image(&inv, true, &src).unwrap());
    assert_eq!(
        ids(&enhanced),
        pairs(&[
            ("ALPINE-CVE-2024-1", "libssl3"),
            ("CVE-2023-32681", "requests"),
            ("GHSA-gem1", "rack"),
            ("GHSA-mvn1", "org.apache.logging.log4j:log4j-core"),
            ("GHSA-npm1", "lodash"),
            ("GO-2024-0001", "golang.org/x/net"),
            ("GO-2024-0002", "stdlib"),
            ("RUSTSEC-2024-0001", "tokio"),
        ])
    );
    let requests = &enhanced[1];
    assert_eq!(requests.advisory_id, "GHSA-aaaa-bbbb-cccc");
    assert_eq!(requests.related, ["GHSA-aaaa-bbbb-cccc", "PYSEC-2023-74"]);
    assert_eq!(requests.fixed_in.as_deref(), Some("2.31.0"));
    assert_eq!(requests.severity, Severity::Undefined);
    assert_eq!(requests.ecosystem, "PyPI");
    // The package is reported as installed, leading `v` and all.
    assert_eq!(enhanced[5].package.version, "v0.17.0");
}

#[test]
fn rpm_distributions_match_by_source_rpm_and_epoch() {
    let src = Mem {
        advisories: vec![
            adv("ALSA-2024:0001", "AlmaLinux:9", "openssl", vec![intro("0"), fixed("1:3.0.7-25.el9_3")]),
            adv("ALSA-2024:0002", "AlmaLinux:9", "openssl", vec![intro("0"), fixed("1:3.0.7-24.el9")]),
        ],
        ..Mem::default()
    };
    let mut p = pkg(PackageManager::Os, "openssl-libs", "3.0.7-24.el9", "var/lib/rpm/rpmdb.sqlite");
    p.source_name = Some("openssl".into());
    p.epoch = Some(1);
    p.release = Some("24.el9".into());
    let inv = image(Some(os("almalinux", "9.3")), vec![p.clone()]);
    let f = findings(match_image(&inv, false, &src).unwrap());
    assert_eq!(ids(&f), pairs(&[("ALSA-2024:0001", "openssl-libs")]));
    // Without its epoch the package would be older than every fix.
    p.epoch = None;
    let inv = image(Some(os("almalinux", "9.3")), vec![p]);
    assert_eq!(findings(match_image(&inv, false, &src).unwrap()).len(), 2);
}

#[test]
fn unsupported_images() {
    let src = Mem {
        advisories: vec![
            adv("DEBIAN-CVE-1", "Debian:12", "zlib", vec![intro("0")]),
            adv("PYSEC-1", "PyPI", "django", vec![intro("0")]),
        ],
        ..Mem::default()
    };
    let os_pkgs = vec![deb("zlib1g", "1:1.2.13", Some(("zlib", None)))];
    let unsupported = |inv: &ImageInventory, enhanced: bool| match match_image(inv, enhanced, &src).unwrap() {
        MatchOutcome::Unsupported(why) => why,
        MatchOutcome::Findings(f) => panic!("expected unsupported, got {f:?}"),
    };

    let mut inv = image(Some(os("debian", "12")), os_pkgs.clone());
    inv.unsupported = vec![("var/lib/rpm/Packages".into(), "Berkeley DB rpm database".into())];
    assert_eq!(unsupported(&inv, true), "var/lib/rpm/Packages: Berkeley DB rpm database");

    let inv = image(None, os_pkgs.clone());
    assert_eq!(unsupported(&inv, false), "no operating system was detected (no os-release)");
    assert_eq!(unsupported(&inv, true), "no operating system was detected (no os-release)");

    let mut amzn = os("amzn", "2023");
    amzn.pretty_name = Some("Amazon Linux 2023".into());
    let inv = image(Some(amzn.clone()), os_pkgs.clone());
    assert_eq!(unsupported(&inv, false), "Amazon Linux 2023 is not supported");
    let inv = image(Some(os("centos", "7")), os_pkgs.clone());
    assert_eq!(unsupported(&inv, false), "centos 7 is not supported");

    let inv = image(Some(os("debian", "11")), os_pkgs.clone());
    assert_eq!(unsupported(&inv, false), "the vulnerability database holds no data for Debian:11");

    // Enhanced: language packages are still matched on an OS without data.
    let mut with_python = os_pkgs;
    with_python.push(pkg(PackageManager::Python, "django", "4.2", "x/METADATA"));
    let inv = image(Some(amzn), with_python.clone());
    assert_eq!(unsupported(&inv, false), "Amazon Linux 2023 is not supported");
    let f = findings(match_image(&inv, true, &src).unwrap());
    assert_eq!(ids(&f), pairs(&[("PYSEC-1", "django")]));
    let inv = image(None, with_python);
    assert_eq!(findings(match_image(&inv, true, &src).unwrap()).len(), 1);
}

#[test]
fn one_finding_per_path_and_deterministic_order() {
    let src = Mem {
        advisories: vec![adv("GHSA-npm1", "npm", "lodash", vec![intro("0"), fixed("4.17.21")])],
        ..Mem::default()
    };
    let mk = |order: &[usize]| {
        let all = [
            pkg(PackageManager::Npm, "lodash", "4.17.20", "b/node_modules/lodash/package.json"),
            pkg(PackageManager::Npm, "lodash", "4.17.20", "a/node_modules/lodash/package.json"),
            pkg(PackageManager::Npm, "lodash", "4.17.19", "c/node_modules/lodash/package.json"),
            pkg(PackageManager::Npm, "lodash", "4.17.21", "d/node_modules/lodash/package.json"),
            // The same package twice at one path: one finding.
            pkg(PackageManager::Npm, "lodash", "4.17.20", "a/node_modules/lodash/package.json"),
        ];
        image(None, order.iter().map(|&i| all[i].clone()).collect())
    };
    let a = findings(match_image(&mk(&[0, 1, 2, 3, 4]), true, &src).unwrap());
    let b = findings(match_image(&mk(&[4, 3, 2, 1, 0]), true, &src).unwrap());
    let paths: Vec<&str> = a.iter().map(|f| f.package.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "c/node_modules/lodash/package.json",
            "a/node_modules/lodash/package.json",
            "b/node_modules/lodash/package.json"
        ]
    );
    assert_eq!(
        a.iter().map(|f| (&f.package.path, &f.package.version)).collect::<Vec<_>>(),
        b.iter().map(|f| (&f.package.path, &f.package.version)).collect::<Vec<_>>()
    );
}

#[test]
fn source_errors_are_returned() {
    let inv = image(Some(os("debian", "12")), vec![deb("zlib1g", "1.2.13", None)]);
    let err = match_image(&inv, false, &Failing).unwrap_err();
    assert_eq!(err.to_string(), "database is gone");
}

#[test]
fn findings_serialise() {
    let src = Mem { advisories: vec![adv("GHSA-npm1", "npm", "lodash", vec![intro("0")])], ..Mem::default() };
    let inv = image(None, vec![pkg(PackageManager::Npm, "lodash", "4.17.20", "p")]);
    let f = findings(match_image(&inv, true, &src).unwrap());
    let json = serde_json::to_value(&f[0]).unwrap();
    assert_eq!(json["severity"], "UNDEFINED");
    assert_eq!(json["package"]["manager"], "NODEPKG");
    let back: Finding = serde_json::from_value(json).unwrap();
    assert_eq!(back, f[0]);
}
