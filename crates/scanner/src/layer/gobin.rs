//! Go binaries: the build info the linker embeds (`runtime/debug.BuildInfo`), found by its
//! magic `\xff Go buildinf:`.
//!
//! The 32-byte header is the magic (14 bytes), the pointer size, a flags byte, and padding.
//! With flag `0x2` (Go 1.18 and later) two varint-prefixed strings follow inline: the Go
//! version and the module info. Older binaries hold pointers into the data segment instead;
//! those are reported as skipped. The module info, between two 16-byte sentinels, has lines
//! `path`, `mod` (main module), `dep` (dependency) and `=>` (replacement of the line above),
//! tab-separated: `dep\tgolang.org/x/net\tv0.17.0\th1:...`.
//!
//! Written here (about 100 lines) since no maintained crate reads it from a byte slice.

use crate::inventory::{Package, PackageManager};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER: usize = 32;
const FLAG_INLINE: u8 = 0x2;
/// How many magic matches are tried before giving up (a binary may embed the bytes elsewhere).
const MAX_CANDIDATES: usize = 16;

/// Go's `binary.Uvarint`: the value and the bytes it took.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return None; // overflows 64 bits
        }
        x |= low << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

fn inline_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, used) = uvarint(b)?;
    let len = usize::try_from(len).ok()?;
    let rest = b.get(used..)?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// `go1.21.3` → `1.21.3`; an experiment suffix (`go1.22.0 X:boringcrypto`) is dropped, and
/// anything not starting `go<digit>` (a `devel` toolchain) gives no version.
#[must_use]
pub fn stdlib_version(go: &str) -> Option<&str> {
    let first = go.split_whitespace().next()?;
    let v = first.strip_prefix("go")?;
    v.starts_with(|c: char| c.is_ascii_digit()).then_some(v)
}

/// Strips the sentinels around the module info (16 bytes each side), when present.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' { &modinfo[16..modinfo.len() - 16] } else { modinfo }
}

/// Packages from the module info text.
fn modules(text: &str, path: &str, out: &mut Vec<Package>) {
    // (path, version) of the line a `=>` replaces.
    let mut last: Option<usize> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", module, version, ..] => {
                // `(devel)`: a main module built from a work tree has no version to match.
                if module.is_empty() || version.is_empty() || *version == "(devel)" {
                    last = None;
                    continue;
                }
                out.push(super::package(PackageManager::GoBinary, module, version, path));
                last = Some(out.len() - 1);
            }
            ["=>", module, version, ..] => {
                if let Some(i) = last.take() {
                    if version.is_empty() {
                        // Replaced by a local directory: no published version left to match.
                        out.remove(i);
                    } else {
                        out[i].name = (*module).to_owned();
                        out[i].version = (*version).to_owned();
                    }
                }
            }
            _ => last = None,
        }
    }
}

/// `Ok(packages)` (empty when the binary is not Go), or `Err` with why the build info is
/// there but unreadable.
///
/// # Errors
/// Build info in the pre-1.18 pointer format, or damaged.
pub fn scan(body: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let mut from = 0;
    let mut saw_pointer_format = false;
    for _ in 0..MAX_CANDIDATES {
        let Some(at) = find(&body[from..], MAGIC).map(|i| i + from) else { break };
        from = at + 1;
        let Some(header) = body.get(at..at + HEADER) else { break };
        if header[15] & FLAG_INLINE == 0 {
            saw_pointer_format = true;
            continue;
        }
        let Some((version, rest)) = inline_string(&body[at + HEADER..]) else { continue };
        let Some((modinfo, _)) = inline_string(rest) else { continue };
        let version = String::from_utf8_lossy(version);
        let mut out = Vec::new();
        if let Some(v) = stdlib_version(&version) {
            out.push(super::package(PackageManager::GoBinary, "stdlib", v, path));
        }
        modules(&String::from_utf8_lossy(strip_sentinels(modinfo)), path, &mut out);
        return Ok(out);
    }
    if saw_pointer_format {
        return Err("Go build info in the pre-1.18 pointer format is not supported".to_owned());
    }
    Ok(Vec::new())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
            n >>= 7;
        }
        out.push(u8::try_from(n).unwrap());
    }

    /// An ELF-shaped buffer holding an inline build-info blob, as Go 1.18+ writes it.
    pub(crate) fn go_binary(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        b.resize(4096, 0xcc);
        let mut header = MAGIC.to_vec();
        header.push(8);
        header.push(FLAG_INLINE);
        header.resize(HEADER, 0);
        b.extend_from_slice(&header);
        varint(version.len(), &mut b);
        b.extend_from_slice(version.as_bytes());
        let mut mi = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        mi.extend_from_slice(modinfo.as_bytes());
        mi.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        varint(mi.len(), &mut b);
        b.extend_from_slice(&mi);
        b.resize(b.len() + 1000, 0);
        b
    }

    const MODINFO: &str = "path\texample.com/app/cmd/app\nmod\texample.com/app\tv1.4.0\th1:abc=\ndep\tgolang.org/x/net\tv0.17.0\th1:def=\ndep\tgithub.com/old/lib\tv1.0.0\th1:x=\n=>\tgithub.com/new/lib\tv1.2.0\th1:y=\ndep\tgithub.com/local/lib\tv0.1.0\n=>\t../lib\t\t\nbuild\t-compiler=gc\nbuild\tGOOS=linux\n";

    #[test]
    fn inline_build_info() {
        let bin = go_binary("go1.21.3", MODINFO);
        let got: Vec<(String, String)> =
            scan(&bin, "usr/bin/app").unwrap().into_iter().map(|p| (p.name, p.version)).collect();
        let want: Vec<(String, String)> = [
            ("stdlib", "1.21.3"),
            ("example.com/app", "v1.4.0"),
            ("golang.org/x/net", "v0.17.0"),
            ("github.com/new/lib", "v1.2.0"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn devel_main_module_and_versions() {
        let bin = go_binary("go1.22.0 X:boringcrypto", "mod\texample.com/app\t(devel)\t\n");
        let got = scan(&bin, "p").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].name.as_str(), got[0].version.as_str()), ("stdlib", "1.22.0"));
        assert_eq!(stdlib_version("go1.21rc2"), Some("1.21rc2"));
        assert_eq!(stdlib_version("devel go1.23-abc"), None);
    }

    #[test]
    fn pointer_format_and_garbage() {
        let mut old = vec![0u8; 100];
        old.extend_from_slice(MAGIC);
        old.extend_from_slice(&[8, 0]);
        old.resize(200, 0);
        assert!(scan(&old, "p").unwrap_err().contains("pointer format"));
        assert!(scan(b"\x7fELF nothing here", "p").unwrap().is_empty());
        // Every truncation of a real blob: no panic.
        let bin = go_binary("go1.21.3", MODINFO);
        for cut in 4090..bin.len() {
            let _ = scan(&bin[..cut], "p");
        }
        // A length that points past the end.
        let mut bad = go_binary("go1.21.3", "");
        bad[4096 + HEADER] = 0xff;
        bad[4096 + HEADER + 1] = 0xff;
        let _ = scan(&bad, "p");
        assert_eq!(uvarint(&[0xff; 11]), None);
    }
}
