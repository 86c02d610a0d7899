//! dpkg's status database (`var/lib/dpkg/status`) and distroless `var/lib/dpkg/status.d/*`:
//! RFC 822-style paragraphs separated by blank lines.

use crate::inventory::{Package, PackageManager};

/// The fields of one paragraph that detection uses; continuation lines are ignored.
fn fields(paragraph: &str) -> Vec<(&str, &str)> {
    paragraph
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// Whether a `Status:` value means the package is on disk: `install ok installed`, or `hold ok
/// installed` (held packages are installed too).
fn installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    matches!(words.as_slice(), ["install" | "hold", "ok", "installed"])
}

/// Packages in a status file. `require_status`: the main database lists removed packages too,
/// so only installed ones count; distroless `status.d` files have no `Status:` field.
#[must_use]
pub fn parse(body: &[u8], path: &str, require_status: bool) -> Vec<Package> {
    // Borrowed when the file is UTF-8 without CRs (as dpkg writes it): no copy of a large database.
    let text = String::from_utf8_lossy(body);
    let text = if text.contains('\r') { std::borrow::Cow::Owned(text.replace("\r\n", "\n")) } else { text };
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let f = fields(paragraph);
        let get = |key: &str| f.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v);
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else { continue };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        if require_status && !get("Status").is_some_and(installed) {
            continue;
        }
        let mut p = super::package(PackageManager::Os, name, version, path);
        match get("Source") {
            Some(src) if !src.is_empty() => match src.split_once('(') {
                Some((n, v)) => {
                    p.source_name = Some(n.trim().to_owned());
                    let v = v.trim_end().trim_end_matches(')').trim();
                    if !v.is_empty() && v != version {
                        p.source_version = Some(v.to_owned());
                    }
                }
                None => p.source_name = Some(src.to_owned()),
            },
            _ => p.source_name = Some(name.to_owned()),
        }
        p.arch = get("Architecture").filter(|a| !a.is_empty()).map(str::to_owned);
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 Package: not-a-package

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: held
Status: hold ok installed
Version: 1:2.0-1
Architecture: all

Package: broken
Version: 1.0
";

    #[test]
    fn status_file() {
        let got = parse(STATUS.as_bytes(), "var/lib/dpkg/status", true);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0].name, "libc6");
        assert_eq!(got[0].version, "2.36-9+deb12u4");
        assert_eq!(got[0].source_name.as_deref(), Some("glibc"));
        assert_eq!(got[0].source_version, None);
        assert_eq!(got[0].arch.as_deref(), Some("amd64"));
        assert_eq!(got[0].path, "var/lib/dpkg/status");
        assert_eq!(got[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(got[1].source_version.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(got[2].name, "held");
        assert_eq!(got[2].version, "1:2.0-1");
        assert_eq!(got[2].source_name.as_deref(), Some("held"));
    }

    #[test]
    fn status_d_without_status() {
        let body = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n\nPackage: base-files\r\nVersion: 12.4+deb12u5\r\n";
        let got = parse(body, "var/lib/dpkg/status.d/tzdata", false);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].name, "base-files");
        assert_eq!(got[1].version, "12.4+deb12u5");
    }

    #[test]
    fn garbage() {
        assert!(parse(b"\x00\xff:::\n\n\n:", "x", true).is_empty());
        assert!(parse(b"", "x", false).is_empty());
    }
}
