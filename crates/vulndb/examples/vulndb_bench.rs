//! Size and speed of an import and of lookups, on generated Debian-like OSV records.
//!
//! `cargo run --release -p berth-vulndb --example vulndb_bench -- gen DIR [RECORDS] [PACKAGES]`
//! (defaults 50000 and 2000) writes RECORDS records, each naming one of PACKAGES source
//! packages in Debian:11, Debian:12 and Debian:13, as `DIR/all.zip` (like osv.dev's) and as
//! `DIR/json/*.json`. `import SOURCE OUT` imports one of them and prints time, size and peak
//! RSS; `lookup DB [PACKAGES]` measures lookups per second of present and absent names on 1 and
//! 2 connections and threads; `diff NEW OLD` times `changed_packages`; `zip-entries ZIP N` writes a zip of N tiny records (to import).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use berth_vulndb::{VulnDb, import};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(i: u64, package: &str, rng: &mut Rng) -> String {
    let urgency = ["low", "medium", "high", "unimportant", "not yet assigned"][rng.below(5) as usize];
    let fixed = rng.below(3) != 0;
    let mut affected = Vec::new();
    for release in ["Debian:11", "Debian:12", "Debian:13"] {
        let events = if fixed {
            format!(r#"[{{"introduced":"0"}},{{"fixed":"{}.{}-{}"}}]"#, rng.below(10), rng.below(30), rng.below(9) + 1)
        } else {
            r#"[{"introduced":"0"}]"#.to_owned()
        };
        affected.push(format!(
            r#"{{"package":{{"ecosystem":"{release}","name":"{package}","purl":"pkg:deb/debian/{package}?arch=source"}},
            "ranges":[{{"type":"ECOSYSTEM","events":{events}}}],"ecosystem_specific":{{"urgency":"{urgency}"}}}}"#
        ));
    }
    format!(
        r#"{{"id":"DEBIAN-CVE-2099-{i}","modified":"2025-0{}-1{}T10:00:00Z","published":"2024-01-01T00:00:00Z",
        "upstream":["CVE-2099-{i}"],
        "details":"A generated advisory about {package}: a flaw in the parsing of untrusted input that may allow a remote attacker to cause a denial of service or possibly execute arbitrary code. Not a real vulnerability.",
        "severity":[{{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
        "references":[{{"type":"ADVISORY","url":"https://security-tracker.debian.org/tracker/CVE-2099-{i}"}}],
        "affected":[{}]}}"#,
        rng.below(9) + 1,
        rng.below(10),
        affected.join(",")
    )
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn write_zip(path: &Path, entries: impl Iterator<Item = (String, String)>) {
    let mut z = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in entries {
        z.start_file(name, opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

fn zip_entries(zip: &Path, n: u64) {
    write_zip(
        zip,
        (0..n).map(|i| (format!("OSV-{i}.json"), format!(r#"{{"id":"OSV-{i}","modified":"2025-01-01T00:00:00Z"}}"#))),
    );
    println!("{}: {n} entries, {} KiB", zip.display(), std::fs::metadata(zip).unwrap().len() / 1024);
}

fn generate(dir: &Path, records: u64, packages: u64) {
    let names: Vec<String> = (0..packages).map(|i| format!("pkg{i}-lib")).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let docs: Vec<(String, String)> = (0..records)
        .map(|i| {
            let p = &names[rng.below(packages) as usize];
            (format!("DEBIAN-CVE-2099-{i}.json"), record(i, p, &mut rng))
        })
        .collect();
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    std::fs::create_dir_all(dir.join("json")).unwrap();
    let zip = dir.join("all.zip");
    write_zip(&zip, docs.iter().cloned());
    for (name, body) in &docs {
        std::fs::write(dir.join("json").join(name), body).unwrap();
    }
    println!(
        "{records} records over {packages} packages: {:.1} MiB of JSON in {}, zip {:.1} MiB",
        bytes as f64 / 1048576.0,
        dir.join("json").display(),
        std::fs::metadata(&zip).unwrap().len() as f64 / 1048576.0
    );
}

fn run_import(source: &Path, out: &Path) {
    let t = Instant::now();
    let report = import(&[source.to_path_buf()], out).unwrap();
    let took = t.elapsed().as_secs_f64();
    println!(
        "import of {}: {took:.2} s ({:.0} records/s), {} advisories, {} affected rows, db {:.1} MiB, peak RSS {} KiB",
        source.display(),
        report.files as f64 / took,
        report.advisories,
        report.affected,
        std::fs::metadata(out).unwrap().len() as f64 / 1048576.0,
        peak_rss_kib()
    );
}

fn lookups(db_path: &Path, packages: u64) {
    let names: Vec<String> = (0..packages).map(|i| format!("pkg{i}-lib")).collect();
    for connections in [1, 2] {
        let db = Arc::new(VulnDb::open_with(db_path, connections).unwrap());
        for (label, present) in [("present", true), ("absent", false)] {
            for threads in [1u64, 2] {
                let per_thread = if present { 20_000 } else { 100_000 };
                let t = Instant::now();
                let found: usize = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|th| {
                            let db = Arc::clone(&db);
                            let names = &names;
                            s.spawn(move || {
                                let mut rng = Rng(0x1234_5678 + th);
                                let mut found = 0;
                                for _ in 0..per_thread {
                                    let i = rng.below(packages) as usize;
                                    let hits = if present {
                                        db.lookup("Debian:12", &names[i]).unwrap()
                                    } else {
                                        db.lookup("Debian:12", &format!("absent{i}")).unwrap()
                                    };
                                    found += hits.len();
                                }
                                found
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum()
                });
                let n = per_thread * threads;
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "lookups, {label} names, {connections} connection(s), {threads} thread(s): {:.0}/s ({:.1} advisories each)",
                    n as f64 / secs,
                    found as f64 / n as f64
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let num = |i: usize, default: u64| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    match arg(0) {
        "gen" => generate(Path::new(arg(1)), num(2, 50_000), num(3, 2_000)),
        "import" => run_import(Path::new(arg(1)), Path::new(arg(2))),
        "lookup" => lookups(Path::new(arg(1)), num(2, 2_000)),
        "diff" => {
            let (a, b) = (VulnDb::open(Path::new(arg(1))).unwrap(), VulnDb::open(Path::new(arg(2))).unwrap());
            let t = Instant::now();
            let changed = a.changed_packages(&b).unwrap();
            println!("changed_packages: {} changed, {:.2} s", changed.len(), t.elapsed().as_secs_f64());
        }
        "zip-entries" => zip_entries(Path::new(arg(1)), num(2, 300_000)),
        _ => eprintln!(
            "usage: vulndb_bench gen DIR [RECORDS] [PACKAGES] | import SOURCE OUT | lookup DB [PACKAGES] | diff DB DB | zip-entries ZIP N"
        ),
    }
}
