//! Rust binaries built with `cargo auditable`: the `.dep-v0` section, zlib-compressed JSON of
//! the dependency tree. Read with `auditable-info` (from the cargo-auditable project, by the
//! Rust Secure Code WG), which finds the section in ELF, PE, Mach-O or Wasm and caps the
//! decompressed size.
//!
//! Kept: runtime dependencies from crates.io, another registry, or git. Dropped: `kind: build`
//! packages (build scripts and proc macros run at build time and are not in the binary), and
//! `local` ones (the binary's own crate and path dependencies, which no advisory database
//! knows).

use auditable_info::Error;
use auditable_serde::{DependencyKind, Source};

use crate::inventory::{Package, PackageManager};

/// Cap on the decompressed JSON.
const MAX_JSON: usize = 8 * 1024 * 1024;

/// `Ok(packages)` (empty when there is no audit data), or `Err` with why it is unreadable.
///
/// # Errors
/// Audit data present but damaged or over its cap.
pub fn scan(body: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let info = match auditable_info::audit_info_from_slice(body, MAX_JSON) {
        Ok(info) => info,
        // Not a cargo-auditable binary, or not a binary format it knows: nothing to say.
        Err(Error::NoAuditData | Error::BinaryParsing(_)) => return Ok(Vec::new()),
        Err(e) => return Err(format!("cargo-auditable data unreadable: {e}")),
    };
    let mut out: Vec<Package> = info
        .packages
        .into_iter()
        .filter(|p| p.kind == DependencyKind::Runtime && p.source != Source::Local)
        .map(|p| super::package(PackageManager::Cargo, &p.name, &p.version.to_string(), path))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF with a `.shstrtab` and a `.dep-v0` section holding
    /// `payload` (already compressed), enough for a section-table reader.
    pub(crate) fn elf_with_section(name: &str, payload: &[u8]) -> Vec<u8> {
        let shstrtab = format!("\0.shstrtab\0{name}\0");
        let mut b = vec![0u8; 64];
        let payload_off = b.len();
        b.extend_from_slice(payload);
        let strtab_off = b.len();
        b.extend_from_slice(shstrtab.as_bytes());
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        let sh_off = b.len();
        // Section headers: null, .shstrtab, the named section.
        let section = |name_off: u32, kind: u32, off: usize, size: usize| {
            let mut s = Vec::with_capacity(64);
            s.extend_from_slice(&name_off.to_le_bytes());
            s.extend_from_slice(&kind.to_le_bytes());
            s.extend_from_slice(&0u64.to_le_bytes()); // flags
            s.extend_from_slice(&0u64.to_le_bytes()); // addr
            s.extend_from_slice(&(off as u64).to_le_bytes());
            s.extend_from_slice(&(size as u64).to_le_bytes());
            s.extend_from_slice(&0u32.to_le_bytes()); // link
            s.extend_from_slice(&0u32.to_le_bytes()); // info
            s.extend_from_slice(&1u64.to_le_bytes()); // align
            s.extend_from_slice(&0u64.to_le_bytes()); // entsize
            s
        };
        b.extend_from_slice(&[0u8; 64]);
        b.extend_from_slice(&section(1, 3, strtab_off, shstrtab.len()));
        b.extend_from_slice(&section(11, 1, payload_off, payload.len()));
        // ELF header.
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little-endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[40..48].copy_from_slice(&(sh_off as u64).to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
        b[60..62].copy_from_slice(&3u16.to_le_bytes()); // shnum
        b[62..64].copy_from_slice(&1u16.to_le_bytes()); // shstrndx
        b
    }

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) const AUDIT_JSON: &str = r#"{"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},
        {"name":"serde","version":"1.0.190","source":"crates.io"},
        {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},
        {"name":"mylib","version":"0.2.0","source":"git"}
    ]}"#;

    #[test]
    fn auditable_binary() {
        let bin = elf_with_section(".dep-v0", &zlib(AUDIT_JSON.as_bytes()));
        let got: Vec<(String, String)> =
            scan(&bin, "usr/bin/app").unwrap().into_iter().map(|p| (p.name, p.version)).collect();
        assert_eq!(got, [("mylib".to_owned(), "0.2.0".to_owned()), ("serde".to_owned(), "1.0.190".to_owned())]);
    }

    #[test]
    fn not_auditable_or_damaged() {
        let plain = elf_with_section(".text", b"\x90\x90");
        assert!(scan(&plain, "p").unwrap().is_empty());
        assert!(scan(b"\x7fELF\x02\x01\x01", "p").unwrap().is_empty());
        let damaged = elf_with_section(".dep-v0", b"not zlib");
        assert!(scan(&damaged, "p").is_err());
        for cut in 0..plain.len() {
            let _ = scan(&plain[..cut], "p");
        }
    }
}
