//! Merging layers: whiteouts, opaque directories, replacement, and the layer each package
//! comes from.

mod layers_support;

use berth_scanner::{ImageInventory, LayerInventory, Limits, OsRelease, PackageManager, Source, merge, scan_layer};
use layers_support::{E, gzip, tar_of};

fn pkg(manager: PackageManager, name: &str, version: &str, path: &str) -> berth_scanner::Package {
    berth_scanner::Package {
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

fn dpkg(path: &str, pkgs: &[(&str, &str)]) -> Source {
    Source { path: path.into(), packages: pkgs.iter().map(|(n, v)| pkg(PackageManager::Os, n, v, path)).collect() }
}

fn npm(path: &str, name: &str, version: &str) -> Source {
    Source { path: path.into(), packages: vec![pkg(PackageManager::Npm, name, version, path)] }
}

fn layer(sources: Vec<Source>) -> LayerInventory {
    LayerInventory { sources, ..LayerInventory::default() }
}

/// (name, version, layer) of every package.
fn view(img: &ImageInventory) -> Vec<(String, String, usize)> {
    img.packages.iter().map(|p| (p.package.name.clone(), p.package.version.clone(), p.layer)).collect()
}

fn nvl(v: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
    v.iter().map(|(n, ver, l)| ((*n).into(), (*ver).into(), *l)).collect()
}

const STATUS: &str = "var/lib/dpkg/status";

#[test]
fn whiteout_of_a_package_database() {
    let base =
        layer(vec![dpkg(STATUS, &[("libc6", "2.36-9")]), dpkg("var/lib/dpkg/status.d/tzdata", &[("tzdata", "2024a")])]);
    let gone = LayerInventory { whiteouts: vec![STATUS.into()], ..LayerInventory::default() };
    let img = merge(&[base.clone(), gone]);
    assert_eq!(view(&img), nvl(&[("tzdata", "2024a", 0)]));
    // A whiteout of a directory removes everything under it.
    let gone_dir = LayerInventory { whiteouts: vec!["var/lib/dpkg".into()], ..LayerInventory::default() };
    assert!(merge(&[base.clone(), gone_dir]).packages.is_empty());
    // A whiteout of a sibling with a common prefix removes nothing.
    let sibling = LayerInventory {
        whiteouts: vec!["var/lib/dpkg/stat".into(), "var/lib/dp".into()],
        ..LayerInventory::default()
    };
    assert_eq!(merge(&[base, sibling]).packages.len(), 2);
}

#[test]
fn opaque_dir_over_node_modules() {
    let base = layer(vec![
        npm("app/node_modules/a/package.json", "a", "1.0.0"),
        npm("app/node_modules/b/package.json", "b", "1.0.0"),
        npm("app/node_modules-old/c/package.json", "c", "0.1.0"),
    ]);
    let top = LayerInventory {
        opaque_dirs: vec!["app/node_modules".into()],
        ..layer(vec![npm("app/node_modules/b/package.json", "b", "1.0.0")])
    };
    let img = merge(&[base, top]);
    // `b` was hidden and written again in the same layer: its chain is broken there.
    assert_eq!(view(&img), nvl(&[("b", "1.0.0", 1), ("c", "0.1.0", 0)]));
}

#[test]
fn reinstalled_and_upgraded_packages() {
    let l0 = layer(vec![dpkg(STATUS, &[("libc6", "2.36-9"), ("libssl3", "3.0.11-1")])]);
    // apt install curl rewrites the whole status file: unchanged packages keep layer 0.
    let l1 = layer(vec![dpkg(STATUS, &[("curl", "7.88.1-10"), ("libc6", "2.36-9"), ("libssl3", "3.0.11-1")])]);
    // apt upgrade: libssl3 changes version in layer 2.
    let l2 = layer(vec![dpkg(STATUS, &[("curl", "7.88.1-10"), ("libc6", "2.36-9"), ("libssl3", "3.0.13-1")])]);
    let img = merge(&[l0.clone(), l1.clone(), l2]);
    assert_eq!(view(&img), nvl(&[("curl", "7.88.1-10", 1), ("libc6", "2.36-9", 0), ("libssl3", "3.0.13-1", 2)]));
    // A layer that touches other files leaves the origins alone.
    let other = layer(vec![npm("srv/node_modules/x/package.json", "x", "1.0.0")]);
    let img = merge(&[l0, other, l1]);
    assert_eq!(
        view(&img),
        nvl(&[("curl", "7.88.1-10", 2), ("libc6", "2.36-9", 0), ("libssl3", "3.0.11-1", 0), ("x", "1.0.0", 1)])
    );
}

#[test]
fn deleted_then_added_again() {
    let p = "usr/lib/node_modules/npm/package.json";
    let l0 = layer(vec![npm(p, "npm", "9.8.1")]);
    let l1 = LayerInventory { whiteouts: vec!["usr/lib/node_modules/npm".into()], ..LayerInventory::default() };
    let l2 = layer(vec![npm(p, "npm", "9.8.1")]);
    assert_eq!(view(&merge(&[l0.clone(), l1.clone()])), nvl(&[]));
    assert_eq!(view(&merge(&[l0, l1, l2])), nvl(&[("npm", "9.8.1", 2)]));
}

#[test]
fn os_release_and_unsupported_follow_the_paths() {
    let os = |id: &str| OsRelease { id: id.into(), version_id: Some("1".into()), codename: None, pretty_name: None };
    let l0 = LayerInventory {
        os_release: vec![("etc/os-release".into(), os("debian")), ("usr/lib/os-release".into(), os("fallback"))],
        unsupported: vec![(
            "var/lib/rpm/Packages".into(),
            "rpm Berkeley DB package databases are not supported".into(),
        )],
        ..LayerInventory::default()
    };
    assert_eq!(merge(std::slice::from_ref(&l0)).os.unwrap().id, "debian");
    assert_eq!(merge(std::slice::from_ref(&l0)).unsupported.len(), 1);
    let l1 =
        LayerInventory { whiteouts: vec!["etc/os-release".into(), "var/lib/rpm".into()], ..LayerInventory::default() };
    let img = merge(&[l0.clone(), l1]);
    assert_eq!(img.os.unwrap().id, "fallback");
    assert!(img.unsupported.is_empty());
    let l2 = LayerInventory { opaque_dirs: vec![String::new()], ..LayerInventory::default() };
    let img = merge(&[l0, l2]);
    assert_eq!(img, ImageInventory::default(), "an opaque root hides everything below");
    assert_eq!(merge(&[]), ImageInventory::default());
}

#[test]
fn deterministic_order() {
    let l0 =
        layer(vec![npm("b/node_modules/z/package.json", "z", "1"), npm("a/node_modules/y/package.json", "y", "1")]);
    let l1 = layer(vec![dpkg(STATUS, &[("m", "1"), ("a", "1")])]);
    let one = merge(&[l0.clone(), l1.clone()]);
    assert_eq!(one, merge(&[l0, l1]));
    let keys: Vec<_> = one.packages.iter().map(|p| p.package.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

/// Real tar layers through the walk, then the merge.
#[test]
fn walked_layers_merge() {
    let status = |extra: &str| format!("Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n{extra}");
    let l0 = tar_of(&[
        E::File("usr/lib/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        E::Symlink("etc/os-release", "../usr/lib/os-release"),
        E::File("var/lib/dpkg/status", status("").as_bytes()),
        E::File("app/node_modules/old/package.json", br#"{"name":"old","version":"1.0.0"}"#),
    ]);
    let extra = "Package: curl\nStatus: install ok installed\nVersion: 7.88.1-10\n";
    let l1 = tar_of(&[
        E::File("var/lib/dpkg/status", status(extra).as_bytes()),
        E::File("app/node_modules/.wh..wh..opq", b""),
        E::File("app/node_modules/new/package.json", br#"{"name":"new","version":"2.0.0"}"#),
    ]);
    let layers: Vec<LayerInventory> =
        [l0, l1].iter().map(|t| scan_layer(&gzip(t)[..], &Limits::default()).unwrap()).collect();
    let img = merge(&layers);
    let os = img.os.as_ref().unwrap();
    assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("debian", Some("12")));
    assert_eq!(view(&img), nvl(&[("curl", "7.88.1-10", 1), ("libc6", "2.36-9", 0), ("new", "2.0.0", 1)]));
    // Inventories survive a JSON round trip (the caller stores them per layer digest).
    let json = serde_json::to_string(&layers).unwrap();
    let back: Vec<LayerInventory> = serde_json::from_str(&json).unwrap();
    assert_eq!(merge(&back), img);
}
