//! Builders for the layer tests: tar layers in memory, compressed three ways, and files shaped
//! like what detectors look for.
#![allow(dead_code)]

use std::io::{Cursor, Write};

/// One tar entry.
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A file whose name goes into the header unchecked (`../x`, absolute, non-UTF-8).
    RawName(&'a [u8], &'a [u8]),
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::File(p, body) | E::Exec(p, body) => {
                let mode = if matches!(e, E::Exec(..)) { 0o755 } else { 0o644 };
                let mut h = header(tar::EntryType::Regular, body.len() as u64, mode);
                b.append_data(&mut h, p, *body).unwrap();
            }
            E::Dir(p) => {
                let mut h = header(tar::EntryType::Directory, 0, 0o755);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Symlink(p, target) => {
                let mut h = header(tar::EntryType::Symlink, 0, 0o777);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hardlink(p, target) => {
                let mut h = header(tar::EntryType::Link, 0, 0o644);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::RawName(name, body) => {
                let mut h = header(tar::EntryType::Regular, body.len() as u64, 0o644);
                let raw = &mut h.as_old_mut().name;
                raw[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, *body).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
        n >>= 7;
    }
    out.push(u8::try_from(n).unwrap());
}

/// An ELF-shaped buffer with Go 1.18+ inline build info.
pub fn go_binary(version: &str, modinfo: &str) -> Vec<u8> {
    let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    b.resize(4096, 0xcc);
    b.extend_from_slice(b"\xff Go buildinf:");
    b.extend_from_slice(&[8, 2]);
    b.resize(4096 + 32, 0);
    varint(version.len(), &mut b);
    b.extend_from_slice(version.as_bytes());
    let mut mi = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
    mi.extend_from_slice(modinfo.as_bytes());
    mi.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
    varint(mi.len(), &mut b);
    b.extend_from_slice(&mi);
    b.resize(b.len() + 512, 0);
    b
}

/// A minimal 64-bit ELF whose only real section is `name`, holding `payload`.
pub fn elf_with_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let shstrtab = format!("\0.shstrtab\0{name}\0");
    let mut b = vec![0u8; 64];
    let payload_off = b.len() as u64;
    b.extend_from_slice(payload);
    let strtab_off = b.len() as u64;
    b.extend_from_slice(shstrtab.as_bytes());
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
    let sh_off = b.len() as u64;
    let section = |name_off: u32, kind: u32, off: u64, size: u64| {
        let mut s = Vec::new();
        s.extend_from_slice(&name_off.to_le_bytes());
        s.extend_from_slice(&kind.to_le_bytes());
        s.extend_from_slice(&[0u8; 16]);
        s.extend_from_slice(&off.to_le_bytes());
        s.extend_from_slice(&size.to_le_bytes());
        s.extend_from_slice(&[0u8; 8]);
        s.extend_from_slice(&1u64.to_le_bytes());
        s.extend_from_slice(&0u64.to_le_bytes());
        s
    };
    b.extend_from_slice(&[0u8; 64]);
    b.extend_from_slice(&section(1, 3, strtab_off, shstrtab.len() as u64));
    b.extend_from_slice(&section(11, 1, payload_off, payload.len() as u64));
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[40..48].copy_from_slice(&sh_off.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[58..60].copy_from_slice(&64u16.to_le_bytes());
    b[60..62].copy_from_slice(&3u16.to_le_bytes());
    b[62..64].copy_from_slice(&1u16.to_le_bytes());
    b
}

/// (manager, name, version, path) of every package in a layer, sorted.
pub fn summary(inv: &berth_scanner::LayerInventory) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = inv
        .sources
        .iter()
        .flat_map(|s| s.packages.iter())
        .map(|p| (p.manager.as_str().to_owned(), p.name.clone(), p.version.clone(), p.path.clone()))
        .collect();
    v.sort();
    v
}
