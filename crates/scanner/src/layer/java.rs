//! Java archives (`.jar`, `.war`, `.ear`, `.par`), read whole with the `zip` crate:
//! `META-INF/maven/<group>/<artifact>/pom.properties` gives `group:artifact` and its version;
//! archives inside (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`, ...) are opened in turn, down to
//! [`Limits::archive_depth`]. Every entry is read through a size cap, and all inflation from one
//! top-level archive counts against [`Limits::archive_inflated`] (zip bombs).

use std::collections::BTreeSet;
use std::io::{Cursor, Read};

use super::Limits;
use crate::inventory::{Package, PackageManager};

/// What one top-level archive yields.
#[derive(Debug, Default)]
pub struct Found {
    pub packages: Vec<Package>,
    pub skipped: Vec<(String, String)>,
}

#[must_use]
pub fn is_archive_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    !stem.is_empty() && ["jar", "war", "ear", "par"].iter().any(|e| ext.eq_ignore_ascii_case(e))
}

/// `META-INF/maven/<group>/<artifact>/pom.properties`, exactly.
fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(parts.as_slice(), ["META-INF", "maven", g, a, "pom.properties"] if !g.is_empty() && !a.is_empty())
}

/// `key=value` (or `key: value`) lines; `#` and `!` comments.
fn pom_package(body: &[u8], path: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(body);
    let (mut group, mut artifact, mut version) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let Some(i) = line.find(['=', ':']) else { continue };
        let (key, value) = (line[..i].trim(), line[i + 1..].trim());
        match key {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    let (g, a, v) = (group?, artifact?, version?);
    if g.is_empty() || a.is_empty() || v.is_empty() {
        return None;
    }
    Some(super::package(PackageManager::Jar, &format!("{g}:{a}"), v, path))
}

/// Scans one archive file of the layer at `path`.
#[must_use]
pub fn scan_archive(body: &[u8], path: &str, limits: &Limits) -> Found {
    let mut found = Found::default();
    let mut budget = limits.archive_inflated;
    scan(body, path, 0, &mut budget, limits, &mut found);
    let mut seen = BTreeSet::new();
    found.packages.retain(|p| seen.insert((p.name.clone(), p.version.clone(), p.path.clone())));
    found
}

fn scan(body: &[u8], path: &str, depth: u32, budget: &mut u64, limits: &Limits, found: &mut Found) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(body)) {
        Ok(z) => z,
        Err(e) => {
            found.skipped.push((path.to_owned(), format!("not a readable zip archive: {e}")));
            return;
        }
    };
    for i in 0..zip.len() {
        let Ok(mut entry) = zip.by_index(i) else { continue };
        if entry.is_dir() {
            continue;
        }
        let Ok(name) = entry.name().map(std::borrow::Cow::into_owned) else { continue };
        let (is_pom, is_nested) = (is_pom_properties(&name), is_archive_name(name.rsplit('/').next().unwrap_or("")));
        let cap = if is_pom {
            limits.metadata_file
        } else if is_nested {
            if depth >= limits.archive_depth {
                found.skipped.push((format!("{path}!/{name}"), "archive nested too deep".to_owned()));
                continue;
            }
            limits.archive_file
        } else {
            continue;
        };
        if *budget == 0 {
            found.skipped.push((path.to_owned(), "inflated-bytes budget for this archive spent".to_owned()));
            return;
        }
        let allowed = cap.min(*budget);
        let mut buf = Vec::new();
        let read = (&mut entry).take(allowed.saturating_add(1)).read_to_end(&mut buf);
        *budget = budget.saturating_sub(buf.len() as u64);
        if let Err(e) = read {
            found.skipped.push((format!("{path}!/{name}"), format!("unreadable archive entry: {e}")));
            continue;
        }
        if buf.len() as u64 > allowed {
            found.skipped.push((format!("{path}!/{name}"), format!("archive entry over its {allowed}-byte cap")));
            continue;
        }
        drop(entry);
        if is_pom {
            found.packages.extend(pom_package(&buf, path));
        } else {
            scan(&buf, &format!("{path}!/{name}"), depth + 1, budget, limits, found);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A zip from (name, body) pairs, deflated.
    pub(crate) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const POM: &[u8] =
        b"#Generated by Maven\nartifactId=jackson-databind\ngroupId=com.fasterxml.jackson.core\nversion=2.15.2\n";

    #[test]
    fn names() {
        assert!(
            is_archive_name("a.jar")
                && is_archive_name("A.WAR")
                && is_archive_name("x.ear")
                && is_archive_name("x.par")
        );
        assert!(!is_archive_name(".jar") && !is_archive_name("jar") && !is_archive_name("x.jarx"));
        assert!(is_pom_properties("META-INF/maven/g/a/pom.properties"));
        assert!(!is_pom_properties("x/META-INF/maven/g/a/pom.properties"));
    }

    #[test]
    fn jar_and_nested() {
        let inner = zip_of(&[(
            "META-INF/maven/org.yaml/snakeyaml/pom.properties",
            b"groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n",
        )]);
        let deepest = zip_of(&[("META-INF/maven/d/deep/pom.properties", b"groupId=d\nartifactId=deep\nversion=9\n")]);
        let middle = zip_of(&[("lib/deepest.jar", &deepest)]);
        let war = zip_of(&[
            ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties", POM),
            ("WEB-INF/lib/snakeyaml-1.33.jar", &inner),
            ("WEB-INF/lib/middle.jar", &middle),
            ("WEB-INF/web.xml", b"<web-app/>"),
        ]);
        let limits = Limits { archive_depth: 1, ..Limits::default() };
        let found = scan_archive(&war, "app/app.war", &limits);
        let got: Vec<(&str, &str, &str)> =
            found.packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str())).collect();
        assert_eq!(
            got,
            [
                ("com.fasterxml.jackson.core:jackson-databind", "2.15.2", "app/app.war"),
                ("org.yaml:snakeyaml", "1.33", "app/app.war!/WEB-INF/lib/snakeyaml-1.33.jar"),
            ]
        );
        // The jar two levels down is past depth 1: skipped, with its path.
        assert_eq!(found.skipped.len(), 1);
        assert_eq!(found.skipped[0].0, "app/app.war!/WEB-INF/lib/middle.jar!/lib/deepest.jar");
        let found = scan_archive(&war, "app/app.war", &Limits::default());
        assert!(
            found
                .packages
                .iter()
                .any(|p| p.name == "d:deep" && p.path == "app/app.war!/WEB-INF/lib/middle.jar!/lib/deepest.jar")
        );
    }

    #[test]
    fn bombs_and_garbage() {
        // 64 MiB of zeros deflates to ~64 KiB; the entry cap stops it.
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let bomb = zip_of(&[("lib/bomb.jar", &zeros)]);
        let limits = Limits { archive_file: 1024 * 1024, ..Limits::default() };
        let found = scan_archive(&bomb, "b.jar", &limits);
        assert!(found.packages.is_empty());
        assert!(found.skipped[0].1.contains("cap"), "{:?}", found.skipped);
        // The total budget stops many entries that are each under the cap.
        let limits = Limits { archive_inflated: 1000, ..Limits::default() };
        let many = zip_of(&[("a.jar", &[0u8; 2000]), ("b.jar", &[0u8; 10])]);
        let found = scan_archive(&many, "m.jar", &limits);
        assert!(found.skipped.iter().any(|s| s.1.contains("budget")), "{:?}", found.skipped);
        let found = scan_archive(b"PK\x03\x04 garbage", "g.jar", &Limits::default());
        assert!(found.packages.is_empty() && found.skipped.len() == 1);
    }
}
