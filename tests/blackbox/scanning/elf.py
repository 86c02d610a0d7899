"""Minimal ELF64 files with chosen sections, for the Go and Rust binaries of the fixtures.

No code runs in them; they only have to be well-formed enough for an ELF reader (`readelf -S`
lists their sections) and for the scanners that look inside them:

* Go (>= 1.18) build information: a `.go.buildinfo` section (and a writable PT_LOAD segment
  over it, which is where Go's own `debug/buildinfo` looks when there is no such section)
  holding the 14-byte magic `\\xff Go buildinf:`, the pointer size, a flags byte with bit 1 set
  ("strings are inline"), padding to 32 bytes, then the runtime version and the module text as
  uvarint-length-prefixed strings. The module text is framed by two 16-byte sentinels and ends
  with a newline before the closing sentinel.
* cargo-auditable: a `.dep-v0` section holding the zlib-compressed JSON dependency list.
"""

from __future__ import annotations

import json
import struct
import zlib

GO_MAGIC = b"\xff Go buildinf:"
# The sentinels cmd/go writes around the module text (runtime/debug strips 16 bytes each side).
GO_INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
GO_INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")

SHT_PROGBITS, SHT_STRTAB = 1, 3
SHF_WRITE, SHF_ALLOC = 0x1, 0x2
PT_LOAD, PF_X, PF_W, PF_R = 1, 0x1, 0x2, 0x4
SHF_EXECINSTR = 0x4
BASE_ADDR = 0x400000


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def elf64(sections: list[tuple[str, bytes, int]], *, loadable: bool = False) -> bytes:
    """An x86-64 little-endian ET_EXEC file with `sections` = [(name, content, sh_flags)], a
    `.shstrtab`, and (with `loadable`) one PT_LOAD per allocated section."""
    ehsize, phentsize, shentsize = 64, 56, 64
    alloc = [s for s in sections if s[2] & SHF_ALLOC] if loadable else []
    phoff = ehsize if alloc else 0
    offset = ehsize + phentsize * len(alloc)
    body = bytearray()
    placed = []  # (name, offset, size, flags)
    for name, content, flags in sections:
        pad = (-(offset + len(body))) % 16
        body += b"\0" * pad
        placed.append((name, offset + len(body), len(content), flags))
        body += content
    shstrtab = b"\0"
    name_off = {}
    for name in [s[0] for s in sections] + [".shstrtab"]:
        name_off[name] = len(shstrtab)
        shstrtab += name.encode() + b"\0"
    str_off = offset + len(body)
    body += shstrtab
    pad = (-(offset + len(body))) % 8
    body += b"\0" * pad
    shoff = offset + len(body)
    shnum = len(sections) + 2
    header = bytearray(b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, BASE_ADDR, phoff, shoff, 0, ehsize,
                          phentsize if alloc else 0, len(alloc), shentsize, shnum, shnum - 1)
    phdrs = bytearray()
    for name, off, size, flags in placed:
        if alloc and flags & SHF_ALLOC:
            pflags = PF_R | (PF_W if flags & SHF_WRITE else 0) | (PF_X if flags & SHF_EXECINSTR else 0)
            phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, pflags, off, BASE_ADDR + off, BASE_ADDR + off, size, size,
                                 0x1000)
    shdrs = bytearray(b"\0" * shentsize)
    for name, off, size, flags in placed:
        addr = BASE_ADDR + off if flags & SHF_ALLOC else 0
        shdrs += struct.pack("<IIQQQQIIQQ", name_off[name], SHT_PROGBITS, flags, addr, off, size, 0, 0, 16, 0)
    shdrs += struct.pack("<IIQQQQIIQQ", name_off[".shstrtab"], SHT_STRTAB, 0, 0, str_off, len(shstrtab), 0, 0, 1, 0)
    return bytes(header + phdrs + body + shdrs)


def go_buildinfo_blob(go_version: str, modinfo: str) -> bytes:
    """The `.go.buildinfo` content: 32-byte header, then the inline strings."""
    head = GO_MAGIC + bytes([8, 0x2])
    head += b"\0" * (32 - len(head))
    mod = GO_INFO_START + modinfo.encode() + GO_INFO_END
    ver = go_version.encode()
    # Trailing padding as in real binaries: Go's reader refuses a string that ends the data.
    return head + uvarint(len(ver)) + ver + uvarint(len(mod)) + mod + b"\0" * 16


def go_modinfo(path: str, main: tuple[str, str], deps: list[tuple]) -> str:
    """The module text: `path`, `mod`, then `dep` lines; a dep given as (path, version, (new
    path, new version)) gets a `=>` replacement line after it."""
    lines = [f"path\t{path}", f"mod\t{main[0]}\t{main[1]}\t"]
    for dep in deps:
        replaced = len(dep) > 2 and dep[2]
        # cmd/go writes no checksum for a module it replaced.
        lines.append(f"dep\t{dep[0]}\t{dep[1]}" + ("" if replaced else f"\th1:{'A' * 43}="))
        if replaced:
            lines.append(f"=>\t{dep[2][0]}\t{dep[2][1]}\th1:{'B' * 43}=")
    lines.append("build\t-compiler=gc")
    return "\n".join(lines) + "\n"


def go_binary(go_version: str, path: str, main: tuple[str, str], deps: list[tuple]) -> bytes:
    blob = go_buildinfo_blob(go_version, go_modinfo(path, main, deps))
    text = b"\xc3" * 64  # a `.text` of `ret`s, for looks
    return elf64([(".text", text, SHF_ALLOC | SHF_EXECINSTR), (".go.buildinfo", blob, SHF_ALLOC | SHF_WRITE)],
                 loadable=True)


def rust_binary(packages: list[dict]) -> bytes:
    """A binary with a cargo-auditable `.dep-v0` section listing `packages` (each: name, version,
    source, kind, dependencies (indices), root)."""
    doc = json.dumps({"packages": packages}, separators=(",", ":")).encode()
    return elf64([(".text", b"\xc3" * 64, SHF_ALLOC | SHF_EXECINSTR), (".dep-v0", zlib.compress(doc, 9), 0)])
