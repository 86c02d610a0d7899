//! `os-release` (freedesktop.org): `KEY=value` lines in shell-style quoting.

use crate::inventory::OsRelease;

/// One value in shell-style quoting: `"..."` (with `\"`, `\\`, `\$`, `` \` `` escapes), `'...'`
/// (literal), or bare (with `\x` escapes). Text after the value is ignored.
fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => out.push(n),
                            Some('\n') | None => {}
                            Some(n) => {
                                out.push('\\');
                                out.push(n);
                            }
                        },
                        c => out.push(c),
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    out
}

/// `None` when the file names no `ID` (the spec's default `linux` says nothing a matcher can use).
#[must_use]
pub fn parse(body: &[u8]) -> Option<OsRelease> {
    let text = String::from_utf8_lossy(body);
    let mut os = OsRelease { id: String::new(), version_id: None, codename: None, pretty_name: None };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = unquote(value);
        match key.trim() {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = Some(value),
            "VERSION_CODENAME" => os.codename = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            _ => {}
        }
    }
    if os.id.is_empty() { None } else { Some(os) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian() {
        let body = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        let os = parse(body).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.codename.as_deref(), Some("bookworm"));
        assert_eq!(os.pretty_name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    #[test]
    fn quoting_and_comments() {
        let body = b"# comment\nID='alpine'\nVERSION_ID=3.19.1 # trailing\nPRETTY_NAME=\"say \\\"hi\\\" \\$x\"\n\ngarbage line\n";
        let os = parse(body).unwrap();
        assert_eq!(os.id, "alpine");
        assert_eq!(os.version_id.as_deref(), Some("3.19.1"));
        assert_eq!(os.pretty_name.as_deref(), Some("say \"hi\" $x"));
        assert_eq!(os.codename, None);
    }

    #[test]
    fn no_id_is_none() {
        assert_eq!(parse(b"NAME=foo\n"), None);
        assert_eq!(parse(b"\xff\xfe\x00garbage"), None);
        assert_eq!(
            parse(b"ID=\"unterminated"),
            Some(OsRelease { id: "unterminated".into(), version_id: None, codename: None, pretty_name: None })
        );
    }
}
