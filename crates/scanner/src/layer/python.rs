//! Python distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info`
//! files, all in the core-metadata (email-header) format: `Name:` and `Version:`.

use crate::inventory::{Package, PackageManager};

/// The name is kept as written; the matcher normalises it (PEP 503).
#[must_use]
pub fn parse(body: &[u8], path: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(body);
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break; // the headers end; the description follows
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if key.eq_ignore_ascii_case("Name") && name.is_none() {
            name = Some(value);
        } else if key.eq_ignore_ascii_case("Version") && version.is_none() {
            version = Some(value);
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => {
            Some(super::package(PackageManager::Python, n, v, path))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let body = b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\nSummary: x\nRequires-Dist: MarkupSafe (>=2.0)\n\nName: not-this\n";
        let p = parse(body, "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("Jinja2", "3.1.2"));
        assert_eq!(p.manager, PackageManager::Python);
    }

    #[test]
    fn missing_fields() {
        assert_eq!(parse(b"Name: x\n", "p"), None);
        assert_eq!(parse(b"\n\nName: x\nVersion: 1\n", "p"), None);
        assert_eq!(parse(b"\xff\xfe", "p"), None);
    }
}
