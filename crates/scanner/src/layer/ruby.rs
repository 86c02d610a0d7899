//! RubyGems as installed: `specifications/<name>-<version>.gemspec`, Ruby source written by
//! `gem install`. Read by line: `s.name = "x".freeze`, `s.version = "1.2.3"` or
//! `Gem::Version.new("1.2.3")`; a name or version not found falls back to the file name.

use crate::inventory::{Package, PackageManager};

/// The first string literal in `s` (double- or single-quoted), without escapes.
fn literal(s: &str) -> Option<&str> {
    let start = s.find(['"', '\''])?;
    let quote = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

/// `rake-13.0.6` or `nokogiri-1.15.4-x86_64-linux` → (name, version): the version starts at
/// the first `-` followed by a digit.
fn from_file_name(stem: &str) -> Option<(&str, &str)> {
    let bytes = stem.as_bytes();
    let i = (0..bytes.len().saturating_sub(1)).find(|&i| bytes[i] == b'-' && bytes[i + 1].is_ascii_digit())?;
    let (name, rest) = (&stem[..i], &stem[i + 1..]);
    // A platform suffix is not part of the version.
    let version = rest.split('-').next().unwrap_or(rest);
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

/// Which attribute a line sets: `<receiver>.name = ...` with any receiver (`s`, `spec`).
fn assignment<'a>(line: &'a str, attr: &str) -> Option<&'a str> {
    let (lhs, rhs) = line.split_once('=')?;
    let lhs = lhs.trim();
    let (_, field) = lhs.rsplit_once('.')?;
    (field == attr && !rhs.starts_with('=')).then_some(rhs)
}

#[must_use]
pub fn parse(body: &[u8], path: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(body);
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if name.is_none() {
            name = assignment(line, "name").and_then(literal);
        }
        if version.is_none() {
            version = assignment(line, "version").and_then(literal);
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".gemspec").unwrap_or(file);
    let fallback = from_file_name(stem);
    let name = name.filter(|n| !n.is_empty()).or(fallback.map(|f| f.0))?;
    let version = version.filter(|v| !v.is_empty()).or(fallback.map(|f| f.1))?;
    Some(super::package(PackageManager::Gemspec, name, version, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_gemspec() {
        let body = b"# -*- encoding: utf-8 -*-\n# stub: rake 13.0.6 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\n  s.required_rubygems_version = Gem::Requirement.new(\">= 1.3.2\".freeze) if s.respond_to? :required_rubygems_version=\n";
        let p = parse(body, "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rake", "13.0.6"));
        assert_eq!(p.manager, PackageManager::Gemspec);
    }

    #[test]
    fn gem_version_new_and_spec_receiver() {
        let body = b"Gem::Specification.new do |spec|\n  spec.name = 'json'\n  spec.version = Gem::Version.new(\"2.6.3\")\nend\n";
        let p = parse(body, "x/specifications/json-2.6.3.gemspec").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("json", "2.6.3"));
    }

    #[test]
    fn falls_back_to_file_name() {
        let p = parse(b"garbage", "x/specifications/nokogiri-1.15.4-x86_64-linux.gemspec").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("nokogiri", "1.15.4"));
        let p = parse(b"", "x/specifications/net-http-0.4.1.gemspec").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("net-http", "0.4.1"));
        assert_eq!(parse(b"", "x/specifications/noversion.gemspec"), None);
    }
}
