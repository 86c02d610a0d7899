//! npm packages as installed: `node_modules/<name>/package.json` and
//! `node_modules/@scope/<name>/package.json` (not lockfiles, not nested `package.json`s).

use serde::Deserialize;

use crate::inventory::{Package, PackageManager};

/// Whether `dir` (the directory holding a `package.json`) is an installed package's root.
#[must_use]
pub fn is_installed_manifest(dir: &str) -> bool {
    let parts: Vec<&str> = dir.rsplit('/').take(3).collect();
    let ok_name = |n: &str| !n.is_empty() && !n.starts_with('.') && !n.starts_with('@');
    match parts.as_slice() {
        [name, "node_modules", ..] => ok_name(name),
        [name, scope, "node_modules"] => ok_name(name) && scope.starts_with('@') && scope.len() > 1,
        _ => false,
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

#[must_use]
pub fn parse(body: &[u8], path: &str) -> Option<Package> {
    let m: Manifest = serde_json::from_slice(body).ok()?;
    let name = m.name?;
    let version = m.version?;
    let (name, version) = (name.as_str()?, version.as_str()?);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    Some(super::package(PackageManager::Npm, name, version, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_dirs() {
        assert!(is_installed_manifest("app/node_modules/lodash"));
        assert!(is_installed_manifest("node_modules/@babel/core"));
        assert!(is_installed_manifest("a/node_modules/x/node_modules/y"));
        assert!(!is_installed_manifest("node_modules/@babel"));
        assert!(!is_installed_manifest("node_modules/.bin"));
        assert!(!is_installed_manifest("app"));
        assert!(!is_installed_manifest("node_modules/lodash/lib"));
        assert!(!is_installed_manifest("node_modules/@a/b/c"));
    }

    #[test]
    fn parse_manifest() {
        let p = parse(br#"{"name":"@babel/core","version":"7.23.2","dependencies":{"x":"1"}}"#, "p").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("@babel/core", "7.23.2"));
        assert_eq!(parse(br#"{"name":"x"}"#, "p"), None);
        assert_eq!(parse(br#"{"name":1,"version":"1"}"#, "p"), None);
        assert_eq!(parse(b"not json", "p"), None);
    }
}
