//! What a layer holds, and what an image holds once its layers are merged.

use serde::{Deserialize, Serialize};

/// Bumped whenever detection changes what it finds, so inventories stored under an older
/// version are made again rather than trusted.
pub const INVENTORY_VERSION: u32 = 1;

/// Who installed a package: the wire names are ECR's (`vulnerablePackages[].packageManager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PackageManager {
    /// dpkg, apk or rpm: the operating system's packages.
    #[serde(rename = "OS")]
    Os,
    #[serde(rename = "PYTHONPKG")]
    Python,
    #[serde(rename = "NODEPKG")]
    Npm,
    #[serde(rename = "GOBINARY")]
    GoBinary,
    #[serde(rename = "CARGO")]
    Cargo,
    #[serde(rename = "JAR")]
    Jar,
    #[serde(rename = "GEMSPEC")]
    Gemspec,
}

impl PackageManager {
    /// ECR's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Os => "OS",
            PackageManager::Python => "PYTHONPKG",
            PackageManager::Npm => "NODEPKG",
            PackageManager::GoBinary => "GOBINARY",
            PackageManager::Cargo => "CARGO",
            PackageManager::Jar => "JAR",
            PackageManager::Gemspec => "GEMSPEC",
        }
    }
}

/// The operating system an image says it is (`os-release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `ubuntu`, `alpine`, `rocky`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`, `22.04`, `3.19.1`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub manager: PackageManager,
    /// The name its ecosystem knows it by: the binary package for dpkg, apk and rpm; the
    /// distribution name for Python (as written); the module path for Go; `group:artifact`
    /// for Maven.
    pub name: String,
    /// The version exactly as installed: dpkg `[epoch:]upstream[-revision]`, rpm
    /// `[epoch:]version-release`, apk `1.2.3-r4`, and the ecosystem's own form otherwise.
    pub version: String,
    /// The package it was built from, where the distribution publishes advisories by it:
    /// dpkg `Source:` (the binary name when absent), apk origin (`o:`), rpm source RPM name.
    pub source_name: Option<String>,
    /// The source package's version when it differs (dpkg `Source: name (version)`).
    pub source_version: Option<String>,
    pub arch: Option<String>,
    /// rpm only: epoch and release apart from `version` (ECR reports them apart).
    pub epoch: Option<u32>,
    pub release: Option<String>,
    /// The file it was found in, without a leading `/` (a package database, a
    /// `package.json`, a binary, a jar, possibly `a.jar!/nested.jar`).
    pub path: String,
}

/// A file in a layer that yields packages, with what it yields. A later layer that holds the
/// same path replaces it whole; a whiteout or opaque directory above it removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Path in the image, without a leading `/`, normalised (no `.`, `..` or `//`).
    pub path: String,
    pub packages: Vec<Package>,
}

/// What one layer holds, as the layer walk found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInventory {
    /// `os-release` files found in this layer, by path (`etc/os-release`, `usr/lib/os-release`),
    /// as regular files. Symlinks are not followed.
    pub os_release: Vec<(String, OsRelease)>,
    pub sources: Vec<Source>,
    /// Paths this layer deletes from lower layers (`.wh.<name>`), normalised, whiteout prefix removed.
    pub whiteouts: Vec<String>,
    /// Directories whose lower content this layer hides (`.wh..wh..opq`).
    pub opaque_dirs: Vec<String>,
    /// Package databases found but not readable (e.g. an rpm Berkeley DB), with why; an image
    /// whose merged view still holds one is reported UNSUPPORTED_IMAGE with that reason.
    pub unsupported: Vec<(String, String)>,
    /// Files skipped for exceeding a size cap, or entries refused (unsafe paths), with why:
    /// for diagnostics, never an error.
    pub skipped: Vec<(String, String)>,
}

/// A package in the merged image, with the layer it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePackage {
    pub package: Package,
    /// Index (from the bottom, 0-based) of the lowest layer from which this name and version
    /// persist to the top: ECR's `sourceLayerHash` is that layer's digest.
    pub layer: usize,
}

/// What an image holds: its layers merged bottom-up, whiteouts applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInventory {
    pub os: Option<OsRelease>,
    pub packages: Vec<ImagePackage>,
    /// Unreadable package databases still present in the merged view, with why.
    pub unsupported: Vec<(String, String)>,
}
