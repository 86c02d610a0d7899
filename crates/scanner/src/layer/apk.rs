//! apk's installed database (`lib/apk/db/installed`): blocks of `X:value` lines.

use crate::inventory::{Package, PackageManager};

#[must_use]
pub fn parse(body: &[u8], path: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let (mut name, mut version, mut origin, mut arch) = (None, None, None, None);
    let mut flush =
        |name: &mut Option<&str>, version: &mut Option<&str>, origin: &mut Option<&str>, arch: &mut Option<&str>| {
            if let (Some(n), Some(v)) = (name.take(), version.take()) {
                let mut p = super::package(PackageManager::Os, n, v, path);
                p.source_name = Some(origin.unwrap_or(n).to_owned());
                p.arch = arch.map(str::to_owned);
                out.push(p);
            }
            *origin = None;
            *arch = None;
        };
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            flush(&mut name, &mut version, &mut origin, &mut arch);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        if value.is_empty() {
            continue;
        }
        match key {
            "P" => name = Some(value),
            "V" => version = Some(value),
            "o" => origin = Some(value),
            "A" => arch = Some(value),
            _ => {}
        }
    }
    flush(&mut name, &mut version, &mut origin, &mut arch);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_db() {
        let body = b"C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\no:musl\nm:Timo\n\nC:Q1def=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nF:lib\nR:libcrypto.so.3\n\nP:noorigin\nV:1.0-r0\n";
        let got = parse(body, "lib/apk/db/installed");
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].name.as_str(), got[0].version.as_str()), ("musl", "1.2.4_git20230717-r4"));
        assert_eq!(got[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(got[1].arch.as_deref(), Some("x86_64"));
        assert_eq!(got[2].source_name.as_deref(), Some("noorigin"));
        assert_eq!(got[2].arch, None);
    }

    #[test]
    fn incomplete_blocks_dropped() {
        assert!(parse(b"P:only-name\n\nV:only-version\n", "x").is_empty());
        assert!(parse(b"\xff\xff\n:\n\n", "x").is_empty());
    }
}
