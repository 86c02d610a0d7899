//! The layer walk: one pass over a layer's (compressed) tar stream, handing the few files
//! that package detectors want to them, and recording whiteouts.
//!
//! Memory stays bounded whatever the layer: bodies nobody wants are skipped by the `tar`
//! crate without buffering; a wanted file is read only up to its cap (over it: recorded in
//! [`LayerInventory::skipped`]); tar extension headers (GNU long names, PAX records) are read
//! through a budget ([`Limits::header_bytes`]), since the `tar` crate buffers them whole.
//! Nothing is written to disk and no link is followed, so no path can escape anything.

pub mod apk;
mod decompress;
pub mod dpkg;
pub mod gobin;
pub mod java;
pub mod npm;
pub mod os_release;
pub mod python;
pub mod rpm;
pub mod ruby;
pub mod rustbin;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;

use crate::inventory::{LayerInventory, OsRelease, Package, PackageManager, Source};

pub use decompress::{Compression, sniff};

const MIB: u64 = 1024 * 1024;

/// Caps that keep a walk's memory and time bounded on any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Package databases and metadata files (dpkg status, rpmdb.sqlite, METADATA, package.json, ...).
    pub metadata_file: u64,
    /// ELF binaries, read whole to look for Go build info and cargo-auditable data.
    pub binary_file: u64,
    /// Java archives, read whole (the zip directory is at the end); nested ones too.
    pub archive_file: u64,
    /// Bytes inflated from one top-level archive and everything nested in it (zip bombs).
    pub archive_inflated: u64,
    /// Nesting of archives inside archives: 2 reads `a.war!/WEB-INF/lib/b.jar` but no deeper.
    pub archive_depth: u32,
    /// Tar entries per layer; more is an error.
    pub entries: u64,
    /// Decompressed bytes per layer; more is an error.
    pub decompressed: u64,
    /// Tar extension headers (long names, PAX records) before one entry; more is an error.
    pub header_bytes: u64,
    /// How many skipped files are listed one by one; the rest are counted in one last line.
    pub recorded_skips: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            metadata_file: 64 * MIB,
            binary_file: 64 * MIB,
            archive_file: 64 * MIB,
            archive_inflated: 256 * MIB,
            archive_depth: 2,
            entries: 1_000_000,
            decompressed: 64 * 1024 * MIB,
            header_bytes: MIB,
            recorded_skips: 1000,
        }
    }
}

/// Why a layer could not be read: the scan reports FAILED with this message.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The bytes handed in could not be read (the blob store's error).
    #[error("reading the layer failed: {0}")]
    Read(io::Error),
    /// Not a gzip, zstd or tar stream, or a damaged or truncated one.
    #[error("the layer is not a valid tar archive (plain, gzip or zstd): {0}")]
    Corrupt(String),
    #[error("the layer decompresses to more than {0} bytes")]
    TooLarge(u64),
    #[error("the layer has more than {0} entries")]
    TooManyEntries(u64),
    #[error("a tar entry's extension headers exceed {0} bytes")]
    HeadersTooLarge(u64),
}

/// What tripped, shared between the readers under the `tar` crate and the walk above it.
#[derive(Default)]
struct Shared {
    /// The caller's reader failed (as opposed to the bytes being bad).
    input_failed: Cell<bool>,
    decompressed: Cell<u64>,
    too_large: Cell<bool>,
    /// `Some(n)`: the `tar` crate is between entries and may read `n` more bytes.
    header_budget: Cell<Option<u64>>,
    headers_too_large: Cell<bool>,
    /// Bytes read from the stream since the current entry was handed out.
    body_read: Cell<u64>,
}

/// The caller's reader, with its failures marked as such.
struct Tap<R> {
    inner: R,
    shared: Rc<Shared>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.shared.input_failed.set(true);
            }
        })
    }
}

/// The decompressed stream, counted against [`Limits::decompressed`] and, between entries,
/// against the header budget.
struct Guard<R> {
    inner: R,
    shared: Rc<Shared>,
    max: u64,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &self.shared;
        let mut want = buf.len();
        if let Some(budget) = s.header_budget.get() {
            if budget == 0 {
                s.headers_too_large.set(true);
                return Err(io::Error::other("tar extension headers too large"));
            }
            want = want.min(usize::try_from(budget).unwrap_or(usize::MAX));
        }
        let done = s.decompressed.get();
        if done >= self.max {
            // One byte past the cap tells a stream that is exactly at it from one over it.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            s.too_large.set(true);
            return Err(io::Error::other("layer too large"));
        }
        want = want.min(usize::try_from(self.max - done).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let n64 = n as u64;
        s.decompressed.set(done + n64);
        match s.header_budget.get() {
            Some(budget) => s.header_budget.set(Some(budget.saturating_sub(n64))),
            None => s.body_read.set(s.body_read.get() + n64),
        }
        Ok(n)
    }
}

fn classify(shared: &Shared, limits: &Limits, e: io::Error) -> LayerError {
    if shared.input_failed.get() {
        LayerError::Read(e)
    } else if shared.too_large.get() {
        LayerError::TooLarge(limits.decompressed)
    } else if shared.headers_too_large.get() {
        LayerError::HeadersTooLarge(limits.header_bytes)
    } else {
        LayerError::Corrupt(e.to_string())
    }
}

/// Reads one layer (gzip, zstd or plain tar, told apart by magic bytes) and returns what it
/// holds. Runs on a blocking thread; reads `input` once, front to back.
///
/// # Errors
/// [`LayerError`] when the stream is unreadable, damaged, or over [`Limits::entries`] or
/// [`Limits::decompressed`]. Files over their caps and unsafe paths are not errors: they are
/// listed in [`LayerInventory::skipped`].
pub fn scan_layer<R: Read>(input: R, limits: &Limits) -> Result<LayerInventory, LayerError> {
    let shared = Rc::new(Shared::default());
    let tap = Tap { inner: input, shared: Rc::clone(&shared) };
    let stream = decompress::decoder(tap).map_err(|e| classify(&shared, limits, e))?;
    let guard = Guard { inner: stream, shared: Rc::clone(&shared), max: limits.decompressed };
    let mut archive = tar::Archive::new(guard);
    let mut walk = Walk::new(limits);
    let mut count: u64 = 0;
    let mut budget = limits.header_bytes;
    shared.header_budget.set(Some(budget));
    let mut entries = archive.entries().map_err(|e| classify(&shared, limits, e))?;
    loop {
        shared.header_budget.set(Some(budget));
        let next = entries.next();
        shared.header_budget.set(None);
        shared.body_read.set(0);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|e| classify(&shared, limits, e))?;
        count += 1;
        if count > limits.entries {
            return Err(LayerError::TooManyEntries(limits.entries));
        }
        // What the `tar` crate will skip before the next header: the entry's stored bytes
        // (a sparse file stores fewer than its size) minus what the walk reads of them.
        let stored = if entry.header().entry_type().is_gnu_sparse() {
            entry.header().entry_size().unwrap_or(0)
        } else {
            entry.size()
        };
        walk.entry(&mut entry).map_err(|e| classify(&shared, limits, e))?;
        let rest = stored.div_ceil(512).saturating_mul(512).saturating_sub(shared.body_read.get());
        budget = rest.saturating_add(limits.header_bytes);
    }
    Ok(walk.finish())
}

/// A path made safe: no leading `/` or `./`, no `.` or empty components; `None` for the root.
///
/// # Errors
/// A `..` component, with why.
pub fn normalise(raw: &str) -> Result<Option<String>, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path has a `..` component"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() { Ok(None) } else { Ok(Some(parts.join("/"))) }
}

/// `(dir, name)`; `dir` is empty at the top.
fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

/// A package with only what every detector knows.
pub(crate) fn package(manager: PackageManager, name: &str, version: &str, path: &str) -> Package {
    Package {
        manager,
        name: name.to_owned(),
        version: version.to_owned(),
        source_name: None,
        source_version: None,
        arch: None,
        epoch: None,
        release: None,
        path: path.to_owned(),
    }
}

/// Which detector wants a file, by its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    OsRelease,
    DpkgStatus,
    DpkgStatusD,
    Apk,
    RpmSqlite,
    RpmUnsupported(&'static str),
    Python,
    Npm,
    Gemspec,
    JavaArchive,
}

const RPM_BDB: &str = "rpm Berkeley DB package databases are not supported";
const RPM_NDB: &str = "rpm NDB package databases are not supported";

fn want(path: &str) -> Option<Want> {
    let (dir, name) = split_last(path);
    match path {
        "etc/os-release" | "usr/lib/os-release" => return Some(Want::OsRelease),
        "var/lib/dpkg/status" => return Some(Want::DpkgStatus),
        "lib/apk/db/installed" | "usr/lib/apk/db/installed" => return Some(Want::Apk),
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" | "usr/share/rpm/rpmdb.sqlite" => {
            return Some(Want::RpmSqlite);
        }
        "var/lib/rpm/Packages" | "usr/lib/sysimage/rpm/Packages" | "usr/share/rpm/Packages" => {
            return Some(Want::RpmUnsupported(RPM_BDB));
        }
        "var/lib/rpm/Packages.db" | "usr/lib/sysimage/rpm/Packages.db" | "usr/share/rpm/Packages.db" => {
            return Some(Want::RpmUnsupported(RPM_NDB));
        }
        _ => {}
    }
    if dir == "var/lib/dpkg/status.d" && !name.ends_with(".md5sums") && !name.starts_with('.') {
        return Some(Want::DpkgStatusD);
    }
    if path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || (name.ends_with(".egg-info") && name.len() > ".egg-info".len())
    {
        return Some(Want::Python);
    }
    if name == "package.json" && npm::is_installed_manifest(dir) {
        return Some(Want::Npm);
    }
    if name.ends_with(".gemspec") && split_last(dir).1 == "specifications" {
        return Some(Want::Gemspec);
    }
    if java::is_archive_name(name) {
        return Some(Want::JavaArchive);
    }
    None
}

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Reads until `buf` is full or EOF; how many bytes were read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads a file body whose size is known to be within its cap.
fn read_body<R: Read>(r: &mut R, size: u64, prefix: &[u8]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    buf.extend_from_slice(prefix);
    r.take(size.saturating_sub(prefix.len() as u64)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The state of one walk: path-keyed, so a later entry for a path replaces an earlier one.
struct Walk<'l> {
    limits: &'l Limits,
    os_release: BTreeMap<String, OsRelease>,
    sources: BTreeMap<String, Vec<Package>>,
    unsupported: BTreeMap<String, String>,
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
    skipped: Vec<(String, String)>,
    skips_unlisted: u64,
}

impl<'l> Walk<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            os_release: BTreeMap::new(),
            sources: BTreeMap::new(),
            unsupported: BTreeMap::new(),
            whiteouts: Vec::new(),
            opaque_dirs: Vec::new(),
            skipped: Vec::new(),
            skips_unlisted: 0,
        }
    }

    fn skip(&mut self, path: String, why: String) {
        if self.skipped.len() < self.limits.recorded_skips {
            self.skipped.push((path, why));
        } else {
            self.skips_unlisted += 1;
        }
    }

    fn too_big(&mut self, path: &str, kind: &str, size: u64, cap: u64) {
        self.skip(path.to_owned(), format!("{kind} of {size} bytes is over the {cap}-byte cap"));
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let raw = entry.path_bytes().into_owned();
        let path = match std::str::from_utf8(&raw) {
            Ok(p) => match normalise(p) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(why) => {
                    self.skip(p.to_owned(), why.to_owned());
                    return Ok(());
                }
            },
            Err(_) => {
                let lossy = String::from_utf8_lossy(&raw).into_owned();
                self.skip(lossy, "path is not UTF-8".to_owned());
                return Ok(());
            }
        };
        let (dir, name) = split_last(&path);
        if let Some(target) = name.strip_prefix(".wh.") {
            if target == ".wh..opq" {
                self.opaque_dirs.push(dir.to_owned());
            } else if target.is_empty() || target.starts_with(".wh.") {
                // AUFS bookkeeping (`.wh..wh.plnk` and the like): not a deletion.
            } else {
                self.whiteouts.push(join(dir, target));
            }
            return Ok(());
        }
        // A later entry for the same path replaces an earlier one, whatever it is.
        self.sources.remove(&path);
        self.os_release.remove(&path);
        self.unsupported.remove(&path);

        let kind = entry.header().entry_type();
        let regular = kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse();
        if !regular {
            // Directories, symlinks, hard links, devices: never followed.
            return Ok(());
        }
        let size = entry.size();
        let limits = self.limits;
        match want(&path) {
            Some(Want::RpmUnsupported(why)) => {
                self.unsupported.insert(path, why.to_owned());
            }
            Some(Want::JavaArchive) => {
                if size > limits.archive_file {
                    self.too_big(&path, "archive", size, limits.archive_file);
                    return Ok(());
                }
                let body = read_body(entry, size, &[])?;
                let found = java::scan_archive(&body, &path, limits);
                for (p, why) in found.skipped {
                    self.skip(p, why);
                }
                self.sources.insert(path, found.packages);
            }
            Some(Want::RpmSqlite) => {
                if size > limits.metadata_file {
                    self.too_big(&path, "package database", size, limits.metadata_file);
                    return Ok(());
                }
                let body = read_body(entry, size, &[])?;
                match rpm::scan_sqlite(&body, &path) {
                    Ok(packages) => {
                        self.sources.insert(path, packages);
                    }
                    Err(why) => self.skip(path, why),
                }
            }
            Some(w) => {
                if size > limits.metadata_file {
                    self.too_big(&path, "metadata file", size, limits.metadata_file);
                    return Ok(());
                }
                let body = read_body(entry, size, &[])?;
                self.metadata(w, path, &body);
            }
            None => {
                if size < 64 {
                    return Ok(());
                }
                let mut magic = [0u8; 4];
                let got = read_up_to(entry, &mut magic)?;
                if got < 4 || magic != ELF_MAGIC {
                    return Ok(());
                }
                if size > limits.binary_file {
                    self.too_big(&path, "ELF binary", size, limits.binary_file);
                    return Ok(());
                }
                let body = read_body(entry, size, &magic)?;
                self.binary(path, &body);
            }
        }
        Ok(())
    }

    fn metadata(&mut self, want: Want, path: String, body: &[u8]) {
        let packages = match want {
            Want::OsRelease => {
                if let Some(os) = os_release::parse(body) {
                    self.os_release.insert(path, os);
                }
                return;
            }
            Want::DpkgStatus => dpkg::parse(body, &path, true),
            Want::DpkgStatusD => dpkg::parse(body, &path, false),
            Want::Apk => apk::parse(body, &path),
            Want::Python => python::parse(body, &path).into_iter().collect(),
            Want::Npm => npm::parse(body, &path).into_iter().collect(),
            Want::Gemspec => ruby::parse(body, &path).into_iter().collect(),
            Want::RpmSqlite | Want::RpmUnsupported(_) | Want::JavaArchive => return,
        };
        // Kept even when empty: an emptied database in a higher layer hides a lower one.
        self.sources.insert(path, packages);
    }

    fn binary(&mut self, path: String, body: &[u8]) {
        let mut packages = Vec::new();
        match gobin::scan(body, &path) {
            Ok(found) => packages.extend(found),
            Err(why) => self.skip(path.clone(), why),
        }
        match rustbin::scan(body, &path) {
            Ok(found) => packages.extend(found),
            Err(why) => self.skip(path.clone(), why),
        }
        if !packages.is_empty() {
            self.sources.insert(path, packages);
        }
    }

    fn finish(mut self) -> LayerInventory {
        if self.skips_unlisted > 0 {
            self.skipped.push((String::new(), format!("{} more skipped files not listed", self.skips_unlisted)));
        }
        self.whiteouts.sort();
        self.whiteouts.dedup();
        self.opaque_dirs.sort();
        self.opaque_dirs.dedup();
        LayerInventory {
            os_release: self.os_release.into_iter().collect(),
            sources: self.sources.into_iter().map(|(path, packages)| Source { path, packages }).collect(),
            whiteouts: self.whiteouts,
            opaque_dirs: self.opaque_dirs,
            unsupported: self.unsupported.into_iter().collect(),
            skipped: self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_and_refuses() {
        assert_eq!(normalise("./etc/os-release"), Ok(Some("etc/os-release".to_owned())));
        assert_eq!(normalise("/usr//lib/./x"), Ok(Some("usr/lib/x".to_owned())));
        assert_eq!(normalise("./"), Ok(None));
        assert_eq!(normalise("/"), Ok(None));
        assert!(normalise("a/../../etc/passwd").is_err());
        assert!(normalise("..").is_err());
    }

    #[test]
    fn wants_by_path() {
        assert_eq!(want("etc/os-release"), Some(Want::OsRelease));
        assert_eq!(want("var/lib/dpkg/status"), Some(Want::DpkgStatus));
        assert_eq!(want("var/lib/dpkg/status.d/libc6"), Some(Want::DpkgStatusD));
        assert_eq!(want("var/lib/dpkg/status.d/libc6.md5sums"), None);
        assert_eq!(want("usr/lib/apk/db/installed"), Some(Want::Apk));
        assert_eq!(want("usr/lib/sysimage/rpm/rpmdb.sqlite"), Some(Want::RpmSqlite));
        assert_eq!(want("var/lib/rpm/Packages"), Some(Want::RpmUnsupported(RPM_BDB)));
        assert_eq!(want("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"), Some(Want::Python));
        assert_eq!(want("usr/lib/python3/site-packages/foo.egg-info/PKG-INFO"), Some(Want::Python));
        assert_eq!(want("usr/lib/python3/site-packages/foo-1.0.egg-info"), Some(Want::Python));
        assert_eq!(want("app/node_modules/lodash/package.json"), Some(Want::Npm));
        assert_eq!(want("app/node_modules/@types/node/package.json"), Some(Want::Npm));
        assert_eq!(want("app/package.json"), None);
        assert_eq!(want("app/node_modules/lodash/lib/package.json"), None);
        assert_eq!(want("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec"), Some(Want::Gemspec));
        assert_eq!(want("opt/app/app.war"), Some(Want::JavaArchive));
        assert_eq!(want("usr/bin/ls"), None);
    }
}
