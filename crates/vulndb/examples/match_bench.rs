//! The matching rate against a real imported database: opens DB (made by
//! `vulndb_bench gen DIR 50000 2000` then `vulndb_bench import DIR/all.zip DB`), builds a Debian 12
//! inventory of PACKAGES dpkg packages (default 10000), two binaries per source package
//! `pkg{i}-lib` (the generator's names; sources beyond its count are absent from the database,
//! as most of an image's are), and times `berth_scanner::matcher::match_image` on it, basic and
//! enhanced, ROUNDS times each (default 5), printing packages per second and CPU time.
//!
//! `cargo run --release -p berth-vulndb --example match_bench -- DB [PACKAGES] [ROUNDS]`

use std::path::Path;
use std::time::Instant;

use berth_scanner::matcher::{MatchOutcome, match_image};
use berth_scanner::{ImageInventory, ImagePackage, OsRelease, Package, PackageManager};
use berth_vulndb::VulnDb;

/// This process's CPU time in seconds (utime + stime of `/proc/self/stat`, 10 ms ticks): every
/// thread, in case the database works on one of its own.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(end) = stat.rfind(')') else { return 0.0 };
    let fields: Vec<&str> = stat[end + 2..].split(' ').collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn inventory(packages: usize) -> ImageInventory {
    ImageInventory {
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
                    version: format!("{}.{}-{}", i % 10, i % 30, i % 9 + 1),
                    source_name: Some(format!("pkg{}-lib", i / 2)),
                    source_version: Some(format!("{}.{}-{}", i % 10, i % 30, i % 9 + 1)),
                    arch: Some("amd64".into()),
                    epoch: None,
                    release: None,
                    path: "var/lib/dpkg/status".into(),
                },
                layer: 0,
            })
            .collect(),
        unsupported: Vec::new(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(db_path) = args.first() else {
        eprintln!("usage: match_bench DB [PACKAGES] [ROUNDS]");
        std::process::exit(2);
    };
    let packages: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let db = VulnDb::open(Path::new(db_path)).expect("open the database");
    let inv = inventory(packages);
    for enhanced in [false, true] {
        let mut rates = Vec::new();
        let mut findings = 0;
        let mut cpu_total = 0.0;
        for _ in 0..rounds {
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let outcome = match_image(&inv, enhanced, &db).expect("match");
            let secs = t.elapsed().as_secs_f64();
            cpu_total += cpu_seconds() - cpu;
            let MatchOutcome::Findings(found) = outcome else { panic!("unsupported image") };
            findings = found.len();
            #[allow(clippy::cast_precision_loss)]
            rates.push(packages as f64 / secs);
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        #[allow(clippy::cast_precision_loss)]
        let cpu_rate = (packages * rounds) as f64 / cpu_total.max(0.01);
        let kind = if enhanced { "enhanced" } else { "basic" };
        println!(
            "{{\"kind\":\"{kind}\",\"packages\":{packages},\"findings\":{findings},\"rounds\":{rounds},\
             \"median_packages_per_s\":{median:.0},\"packages_per_cpu_s\":{cpu_rate:.0},\"cpu_s\":{cpu_total:.2}}}"
        );
    }
}
