//! Layers merged bottom-up into what the image holds (OCI layer spec's whiteouts).
//!
//! Path-keyed: for each layer, its whiteouts (`.wh.name`: the path and everything under it)
//! and opaque directories (everything under the directory) remove lower content first; then
//! its sources replace same-path sources whole. A package's layer is the lowest layer from
//! which the same (manager, name, version, path) persists unbroken to the top.

use std::collections::{BTreeMap, HashMap};

use crate::inventory::{ImageInventory, ImagePackage, LayerInventory, OsRelease, Package, PackageManager};

/// What a path holds in the merged view so far.
#[derive(Default)]
struct View {
    /// path → packages, each with the layer it persists from.
    sources: BTreeMap<String, Vec<ImagePackage>>,
    os_release: BTreeMap<String, OsRelease>,
    unsupported: BTreeMap<String, String>,
}

/// Removes `path` and everything under it.
fn remove_tree<V>(map: &mut BTreeMap<String, V>, path: &str) {
    if path.is_empty() {
        map.clear();
        return;
    }
    map.remove(path);
    remove_under(map, path);
}

/// Removes everything strictly under `dir` (`""` is the root: everything).
fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str) {
    if dir.is_empty() {
        map.clear();
        return;
    }
    // Keys under `dir/` sort between `dir/` and `dir0` (`'0'` follows `'/'`).
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let doomed: Vec<String> = map.range(lo..hi).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

impl View {
    fn remove_tree(&mut self, path: &str) {
        remove_tree(&mut self.sources, path);
        remove_tree(&mut self.os_release, path);
        remove_tree(&mut self.unsupported, path);
    }

    fn remove_under(&mut self, dir: &str) {
        remove_under(&mut self.sources, dir);
        remove_under(&mut self.os_release, dir);
        remove_under(&mut self.unsupported, dir);
    }
}

type Key<'a> = (PackageManager, &'a str, &'a str, &'a str);

fn key(p: &Package) -> Key<'_> {
    (p.manager, p.name.as_str(), p.version.as_str(), p.path.as_str())
}

/// The image's inventory from its layers, bottom (index 0) first.
#[must_use]
pub fn merge(layers: &[LayerInventory]) -> ImageInventory {
    let mut view = View::default();
    for (index, layer) in layers.iter().enumerate() {
        for path in &layer.whiteouts {
            view.remove_tree(path);
        }
        for dir in &layer.opaque_dirs {
            view.remove_under(dir);
        }
        for source in &layer.sources {
            let lower = view.sources.remove(&source.path).unwrap_or_default();
            let origins: HashMap<Key<'_>, usize> = lower.iter().map(|ip| (key(&ip.package), ip.layer)).collect();
            let merged: Vec<ImagePackage> = source
                .packages
                .iter()
                .map(|p| ImagePackage { package: p.clone(), layer: origins.get(&key(p)).copied().unwrap_or(index) })
                .collect();
            view.sources.insert(source.path.clone(), merged);
        }
        for (path, os) in &layer.os_release {
            view.os_release.insert(path.clone(), os.clone());
        }
        for (path, why) in &layer.unsupported {
            view.unsupported.insert(path.clone(), why.clone());
        }
    }
    let os = view.os_release.get("etc/os-release").or_else(|| view.os_release.get("usr/lib/os-release")).cloned();
    let mut packages: Vec<ImagePackage> = view.sources.into_values().flatten().collect();
    packages.sort_by(|a, b| a.package.cmp(&b.package).then(a.layer.cmp(&b.layer)));
    packages.dedup();
    ImageInventory { os, packages, unsupported: view.unsupported.into_iter().collect() }
}
