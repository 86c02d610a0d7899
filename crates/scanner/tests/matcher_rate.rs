//! The matching rate (issue goal: at least 10,000 packages a second). This test checks the
//! findings of a large synthetic image and prints the rate; it asserts no time. Measure with a
//! release build:
//!
//! ```sh
//! BERTH_MATCH_RATE_PACKAGES=10000 cargo test --release -p berth-scanner --test matcher_rate -- --nocapture
//! ```

use std::time::Instant;

use berth_scanner::advisory::BoxError;
use berth_scanner::matcher::{MatchOutcome, match_image};
use berth_scanner::{
    Advisory, AdvisorySource, Affected, Event, ImageInventory, ImagePackage, OsRelease, Package, PackageManager, Range,
    RangeKind, SeverityScore,
};
use std::collections::HashMap;

/// Advisories by (ecosystem, package), as a database index would give them.
struct Indexed(HashMap<(String, String), Vec<Advisory>>);

impl AdvisorySource for Indexed {
    fn advisories(&self, ecosystem: &str, package: &str) -> Result<Vec<Advisory>, BoxError> {
        Ok(self.0.get(&(ecosystem.to_owned(), package.to_owned())).cloned().unwrap_or_default())
    }
    fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, BoxError> {
        Ok(self.0.keys().any(|(e, _)| e == ecosystem))
    }
}

const PER_SOURCE: usize = 4;
const ADVISORIES_PER_SOURCE: usize = 20;

fn events(j: usize) -> Vec<Event> {
    if j.is_multiple_of(7) {
        vec![Event::Introduced("0".into())]
    } else {
        vec![Event::Introduced("0".into()), Event::Fixed(format!("1.{j}-1"))]
    }
}

/// This thread's CPU time in seconds (Linux `/proc`, 10 ms ticks), where readable: the
/// machine may be busy, and wall time then says little.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which ends with the last `)`: utime and stime are the
    // 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[test]
fn matching_rate() {
    let packages: usize = std::env::var("BERTH_MATCH_RATE_PACKAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let sources = packages.div_ceil(PER_SOURCE);
    let mut index = HashMap::new();
    for s in 0..sources {
        let name = format!("src{s}");
        let list = (0..ADVISORIES_PER_SOURCE)
            .map(|j| Advisory {
                id: format!("DEBIAN-CVE-2024-{s}{j:02}"),
                aliases: Vec::new(),
                upstream: vec![format!("CVE-2024-{s}{j:02}")],
                summary: Some("a summary".into()),
                details: Some("some details of the vulnerability".into()),
                published: Some("2024-01-01T00:00:00Z".into()),
                modified: "2024-02-01T00:00:00Z".into(),
                severity: vec![SeverityScore {
                    kind: "CVSS_V3".into(),
                    score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H".into(),
                }],
                references: vec![format!("https://security-tracker.example/CVE-2024-{s}{j:02}")],
                ecosystem: "Debian:12".into(),
                package: name.clone(),
                affected: Affected {
                    ranges: vec![Range { kind: RangeKind::Ecosystem, events: events(j) }],
                    versions: Vec::new(),
                },
                vendor_severity: (j % 3 == 0).then(|| "low".to_owned()),
            })
            .collect();
        index.insert(("Debian:12".to_owned(), name), list);
    }
    let inv = ImageInventory {
        os: Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
        }),
        packages: (0..packages)
            .map(|i| ImagePackage {
                package: Package {
                    manager: PackageManager::Os,
                    name: format!("bin{i}"),
                    version: "1.10-1+b1".into(),
                    source_name: Some(format!("src{}", i / PER_SOURCE)),
                    source_version: Some("1.10-1".into()),
                    arch: Some("amd64".into()),
                    epoch: None,
                    release: None,
                    path: "var/lib/dpkg/status".into(),
                },
                layer: 0,
            })
            .collect(),
        unsupported: Vec::new(),
    };
    let src = Indexed(index);
    let (started, cpu_started) = (Instant::now(), thread_cpu_seconds());
    let outcome = match_image(&inv, false, &src).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds().zip(cpu_started).map(|(b, a)| b - a);
    let MatchOutcome::Findings(findings) = outcome else { panic!("unsupported") };
    // Version 1.10-1 is affected by the unfixed advisories and those fixed above 1.10.
    let per_package = (0..ADVISORIES_PER_SOURCE).filter(|j| j.is_multiple_of(7) || *j > 10).count();
    assert_eq!(findings.len(), packages * per_package);
    assert!(findings.iter().all(|f| f.package.version == "1.10-1+b1"));
    #[allow(clippy::cast_precision_loss)]
    let rate = packages as f64 / elapsed;
    eprintln!(
        "matched {packages} packages ({} advisories, {} findings) in {elapsed:.3} s: {rate:.0} packages/s; \
         CPU time {} s",
        sources * ADVISORIES_PER_SOURCE,
        findings.len(),
        cpu.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2}")),
    );
}
