//! The ecosystems' version orders.
//!
//! Every comparator here is written for this crate rather than taken from a crate, for three
//! reasons that hold for all of them: hostile input (a component of 10,000 digits must neither
//! overflow nor allocate per digit, so numbers are compared as digit strings, never parsed to
//! `u64`); agreement with the ecosystem's own tool where the published crates differ from it
//! (`pep440_rs` and `semver` parse numbers into `u64` and so refuse versions that `packaging`
//! and npm accept or compare differently; `rpm-version` does not follow rpm 4.18's rule for
//! a missing release); and few dependencies. Each module says what it follows; the oracle tests
//! in `tests/versions_oracle.rs` hold them to the tools themselves.

mod apk;
mod dpkg;
mod go;
mod maven;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;

/// A version order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// rpm 4.18's `rpmvercmp` over `[epoch:]version[-release]`.
    Rpm,
    /// Alpine's apk.
    Apk,
    /// Python: PEP 440 as `packaging.version.Version` orders it.
    Pep440,
    /// npm's `semver` (also crates.io, whose versions are SemVer 2.0).
    Semver,
    /// Go modules (`golang.org/x/mod/semver`), and the Go toolchain's `go1.21.3` forms.
    Go,
    /// Maven's `ComparableVersion`.
    Maven,
    /// RubyGems' `Gem::Version`.
    RubyGems,
}

impl Scheme {
    /// The order of an OSV ecosystem (`affected[].package.ecosystem`), release suffix and
    /// all (`Debian:12`, `Alpine:v3.19`, `Rocky Linux:9`). `None` for ecosystems without one
    /// here.
    #[must_use]
    pub fn for_ecosystem(osv_ecosystem: &str) -> Option<Scheme> {
        let base = osv_ecosystem.split(':').next().unwrap_or_default();
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Red Hat" | "Mageia" => Scheme::Rpm,
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" => Scheme::Semver,
            "Go" => Scheme::Go,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            _ => return None,
        })
    }

    /// Whether `version` is a version in this scheme.
    #[must_use]
    pub fn is_valid(self, version: &str) -> bool {
        compare(self, version, version).is_some()
    }
}

/// Compares two versions in `scheme`; `None` when either is not a version in it.
#[must_use]
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    match scheme {
        Scheme::Dpkg => dpkg::compare(a, b),
        Scheme::Rpm => rpm::compare(a, b),
        Scheme::Apk => apk::compare(a, b),
        Scheme::Pep440 => pep440::compare(a, b),
        Scheme::Semver => semver::compare(a, b),
        Scheme::Go => go::compare(a, b),
        Scheme::Maven => maven::compare(a, b),
        Scheme::RubyGems => rubygems::compare(a, b),
    }
}

/// Compares two runs of ASCII digits as the numbers they write, of any length, leading zeros
/// ignored.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Splits `s` after its leading run of bytes satisfying `f`.
pub(crate) fn split_run(s: &str, f: impl Fn(u8) -> bool) -> (&str, &str) {
    let n = s.bytes().take_while(|&c| f(c)).count();
    s.split_at(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Scheme; 8] = [
        Scheme::Dpkg,
        Scheme::Rpm,
        Scheme::Apk,
        Scheme::Pep440,
        Scheme::Semver,
        Scheme::Go,
        Scheme::Maven,
        Scheme::RubyGems,
    ];

    #[test]
    fn ecosystems_map_to_schemes() {
        for (eco, scheme) in [
            ("Debian:12", Some(Scheme::Dpkg)),
            ("Ubuntu:22.04:LTS", Some(Scheme::Dpkg)),
            ("Ubuntu:Pro:18.04:LTS", Some(Scheme::Dpkg)),
            ("Alpine:v3.19", Some(Scheme::Apk)),
            ("AlmaLinux:9", Some(Scheme::Rpm)),
            ("Rocky Linux:9", Some(Scheme::Rpm)),
            ("SUSE:Linux Enterprise Server 15 SP5", Some(Scheme::Rpm)),
            ("openSUSE:Leap 15.5", Some(Scheme::Rpm)),
            ("Red Hat:enterprise_linux:9::appstream", Some(Scheme::Rpm)),
            ("PyPI", Some(Scheme::Pep440)),
            ("npm", Some(Scheme::Semver)),
            ("crates.io", Some(Scheme::Semver)),
            ("Go", Some(Scheme::Go)),
            ("Maven", Some(Scheme::Maven)),
            ("RubyGems", Some(Scheme::RubyGems)),
            ("Packagist", None),
            ("", None),
            ("debian:12", None),
        ] {
            assert_eq!(Scheme::for_ecosystem(eco), scheme, "{eco}");
        }
    }

    #[test]
    fn digit_runs_compare_as_numbers_of_any_length() {
        assert_eq!(cmp_digits("0010", "10"), Ordering::Equal);
        assert_eq!(cmp_digits("9", "10"), Ordering::Less);
        assert_eq!(cmp_digits("", "0"), Ordering::Equal);
        let huge = "9".repeat(10_000);
        let huger = format!("1{}", "0".repeat(10_000));
        assert_eq!(cmp_digits(&huge, &huger), Ordering::Less);
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // Random strings over an alphabet of separators, letters, digits, whitespace and
        // multi-byte characters (Unicode digits, accents, a four-byte character).
        let alphabet: Vec<char> = "0123456789.-_+~^:!=vVaAzZrRcpeP /\t\n\0é٣ſ𝟘ǅ\u{feff}".chars().collect();
        let mut seed = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let schemes = ALL;
        for _ in 0..20_000 {
            let mut word = || -> String {
                let n = next() % 12;
                (0..n).map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap_or(0)]).collect()
            };
            let (a, b) = (word(), word());
            for scheme in schemes {
                let ab = compare(scheme, &a, &b);
                let ba = compare(scheme, &b, &a);
                assert_eq!(ab.map(Ordering::reverse), ba, "{scheme:?}: {a:?} vs {b:?} is not antisymmetric");
                if ab.is_some() {
                    assert_eq!(compare(scheme, &a, &a), Some(Ordering::Equal), "{scheme:?}: {a:?}");
                }
            }
        }
    }

    #[test]
    fn huge_components_neither_panic_nor_hang() {
        let huge = format!("1.{}.3", "7".repeat(100_000));
        for scheme in ALL {
            let started = std::time::Instant::now();
            let _ = compare(scheme, &huge, "1.2.3");
            let _ = compare(scheme, &huge, &huge);
            let junk: String =
                (0..20_000u32).map(|i| ['.', '-', '~', '^', '+', '_', 'a', '0'][(i % 8) as usize]).collect();
            let _ = compare(scheme, &junk, &huge);
            assert!(started.elapsed().as_secs() < 2, "{scheme:?} is slow on huge input");
        }
    }
}
