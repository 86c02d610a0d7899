//! The version orders against the ecosystems' own tools, over generated and edge-case pairs.
//!
//! Each test writes its pairs to a file, has the tool compare them all in one or two
//! processes (dpkg: one process per pair, two at a time), and requires zero disagreements and
//! at least 10,000 pairs both sides compared. A pair the tool refuses is left out only when
//! `compare` refuses it too. A missing tool fails the test, naming what to install.
//!
//! | scheme | tool | apt package |
//! |---|---|---|
//! | dpkg | `dpkg --compare-versions` | dpkg |
//! | rpm | `rpm.vercmp` in `rpm --eval '%{lua: …}'` | rpm |
//! | PEP 440 | `packaging.version.Version` | python3-packaging (or pip `packaging`) |
//! | npm semver | npm's bundled `semver` | nodejs, npm |
//! | Go | `golang.org/x/mod/semver`, the toolchain's vendored copy | golang-go |
//! | Maven | `ComparableVersion`'s `main` | maven (with a JRE) |
//! | RubyGems | `Gem::Version` | ruby |
//!
//! apk has no tool here (apk-tools is not packaged for Debian): its tables are in
//! `src/version/apk.rs`.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use berth_scanner::version::{Scheme, compare};

/// splitmix64: deterministic, seeded per scheme.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap_or(0)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn number(&mut self) -> String {
        match self.below(20) {
            0 => "0".into(),
            1 => format!("0{}", self.below(10)),
            2 => (0..10 + self.below(30)).map(|_| char::from(b'0' + (self.below(10) as u8))).collect(),
            3 => "9007199254740991".into(),
            4 => format!("900719925474099{}", self.below(10)),
            5..=9 => self.below(3).to_string(),
            _ => self.below(25).to_string(),
        }
    }
}

/// How one scheme's versions are made: tokens joined by separators, then mutated.
struct Grammar {
    words: &'static [&'static str],
    seps: &'static [&'static str],
    /// Characters that mutations insert.
    alphabet: &'static [u8],
    prefixes: &'static [&'static str],
    suffixes: &'static [&'static str],
    edge: &'static [&'static str],
}

impl Grammar {
    fn version(&self, rng: &mut Rng) -> String {
        let mut v = String::new();
        if rng.chance(10) {
            v.push_str(rng.pick(self.prefixes));
        }
        let n = 1 + rng.below(5);
        for i in 0..n {
            if i > 0 {
                v.push_str(rng.pick(self.seps));
            }
            if i == 0 || rng.chance(70) {
                v.push_str(&rng.number());
            } else {
                v.push_str(rng.pick(self.words));
            }
            if rng.chance(15) {
                v.push_str(rng.pick(self.words));
                if rng.chance(60) {
                    v.push_str(&rng.number());
                }
            }
        }
        if rng.chance(40) {
            v.push_str(rng.pick(self.suffixes));
        }
        v
    }

    fn mutate(&self, rng: &mut Rng, v: &str) -> String {
        let mut b: Vec<u8> = v.bytes().collect();
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(b.len() + 1);
            match rng.below(7) {
                0 => b.insert(at, self.alphabet[rng.below(self.alphabet.len())]),
                1 if at < b.len() => {
                    b.remove(at);
                }
                2 if at < b.len() => b[at] = self.alphabet[rng.below(self.alphabet.len())],
                3 => b.extend_from_slice(rng.pick(self.suffixes).as_bytes()),
                4 => b.extend_from_slice(rng.pick(self.seps).as_bytes()),
                5 if at < b.len() && b[at].is_ascii_digit() => b.insert(at, b'0'),
                _ => {}
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Every edge pair, then generated pairs until `valid` pairs (edge ones included) are
    /// versions to `compare`, keeping at most `invalid` of the others.
    fn pairs(&self, scheme: Scheme, seed: u64, valid: usize, invalid: usize) -> Vec<(String, String)> {
        let mut rng = Rng(seed);
        let mut out = Vec::with_capacity(valid + invalid + self.edge.len() * self.edge.len());
        for a in self.edge {
            for b in self.edge {
                out.push(((*a).to_owned(), (*b).to_owned()));
            }
        }
        let mut n_valid = out.iter().filter(|(a, b)| compare(scheme, a, b).is_some()).count();
        let mut n_invalid = out.len() - n_valid;
        let mut pool: Vec<String> = (0..500).map(|_| self.version(&mut rng)).collect();
        let mut budget = 2_000_000;
        while n_valid < valid && budget > 0 {
            budget -= 1;
            let a = if rng.chance(20) { pool[rng.below(pool.len())].clone() } else { self.version(&mut rng) };
            let b = match rng.below(4) {
                0 => pool[rng.below(pool.len())].clone(),
                1 => a.clone(),
                _ => self.mutate(&mut rng, &a),
            };
            if rng.chance(5) {
                let i = rng.below(pool.len());
                pool[i] = b.clone();
            }
            if compare(scheme, &a, &b).is_some() {
                n_valid += 1;
            } else if n_invalid < invalid {
                n_invalid += 1;
            } else {
                continue;
            }
            out.push((a, b));
        }
        out
    }
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("berth-oracle-{name}-{}", std::process::id()))
}

fn write_pairs(name: &str, pairs: &[(String, String)]) -> PathBuf {
    let mut text = String::new();
    for (a, b) in pairs {
        assert!(!a.contains('\n') && !b.contains(['\t', '\n']));
        let _ = writeln!(text, "{a}\t{b}");
    }
    let path = scratch(name);
    std::fs::write(&path, text).expect("write pairs");
    path
}

/// The tool's answer for one pair: `Some(ordering)` or `None` (refused).
fn parse_answer(line: &str) -> Option<Ordering> {
    match line.trim() {
        "-1" => Some(Ordering::Less),
        "0" => Some(Ordering::Equal),
        "1" => Some(Ordering::Greater),
        _ => None,
    }
}

fn run(cmd: &mut Command, install: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): install {install}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {} (install {install})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Checks our answers against the tool's; returns (compared, refused by both).
fn check(scheme: Scheme, pairs: &[(String, String)], answers: &[Option<Ordering>], started: Instant) {
    assert_eq!(answers.len(), pairs.len(), "the tool answered a different number of pairs");
    let mut disagreements = Vec::new();
    let (mut compared, mut refused) = (0, 0);
    for ((a, b), tool) in pairs.iter().zip(answers) {
        let ours = compare(scheme, a, b);
        match (tool, ours) {
            (None, None) => refused += 1,
            (Some(t), Some(o)) if *t == o => compared += 1,
            _ => disagreements.push(format!("{a:?} vs {b:?}: tool {tool:?}, ours {ours:?}")),
        }
    }
    eprintln!(
        "{scheme:?}: {compared} pairs agree, {refused} refused by both, {} disagree, {:.1} s",
        disagreements.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with the tool, e.g.:\n{}",
        disagreements.len(),
        disagreements.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(compared >= 10_000, "only {compared} pairs compared");
}

const DPKG: Grammar = Grammar {
    words: &["a", "b", "rc", "beta", "dfsg", "ubuntu", "deb", "u", "bpo", "git", "z", "A", "Z"],
    seps: &[".", ".", ".", "+", "~", "-", ":", "~~", "+~", ".~", ""],
    alphabet: b"0123456789.+~-:azAZ_ ",
    prefixes: &["1:", "0:", "2:", "00:", "12345678901:", "a:", "-1:", ":", "+1:"],
    suffixes: &[
        "-1",
        "-0",
        "-1ubuntu1",
        "-1+deb12u1",
        "~bpo11+1",
        "-1~",
        "~",
        "~~",
        "+",
        "-",
        "-a",
        "-1.2.3",
        "-1:2",
        ".",
        "a",
    ],
    edge: &[
        "0",
        "1",
        "1.0",
        "1.0-0",
        "1.0-1",
        "1.0~rc1",
        "1.0~~",
        "1.0~",
        "1.0+",
        "1.0a",
        "1.0+b1",
        "1:0",
        "0:1.0",
        "01.0",
        "1.00",
        "1.0.0",
        "2.36.1-8+deb12u1",
        "7.88.1-10+deb12u5",
        "1.2.3-4ubuntu0.1",
        "1.0-~",
        "1.0-1~",
        "1.0--1",
        "1:1:1",
        "a",
        "1.0-",
        ":1",
        "1:",
        "1_0",
        "~1",
        "1a~",
        "99999999999999999999999",
        "4294967296:1",
        "2147483647:1",
        "2147483648:1",
    ],
};

#[test]
fn dpkg_agrees_with_dpkg_compare_versions() {
    let started = Instant::now();
    // Whitespace ends a field in the shell loop, and dpkg refuses it anyway: leave it out.
    let pairs: Vec<_> = DPKG
        .pairs(Scheme::Dpkg, 0xD9C6, 10_050, 600)
        .into_iter()
        .filter(|(a, b)| !a.contains(' ') && !b.contains(' ') && !a.is_empty() && !b.is_empty())
        .collect();
    // One dpkg per pair, asked whether our answer holds (`lt`, `eq` or `gt`; `lt` where we
    // refuse the pair): one call confirms or refutes it. A warning or an error means dpkg
    // refused a version.
    let ops: Vec<&str> = pairs
        .iter()
        .map(|(a, b)| match compare(Scheme::Dpkg, a, b) {
            Some(Ordering::Equal) => "eq",
            Some(Ordering::Greater) => "gt",
            _ => "lt",
        })
        .collect();
    let lines: Vec<(String, String)> =
        pairs.iter().zip(&ops).map(|((a, b), op)| (format!("{op}\t{a}"), b.clone())).collect();
    let half = lines.len() / 2;
    let files = [write_pairs("dpkg-1", &lines[..half]), write_pairs("dpkg-2", &lines[half..])];
    let script = r#"
        err=$(mktemp)
        while IFS=$'\t' read -r op a b; do
            dpkg --compare-versions "$a" "$op" "$b" 2>"$err"; rc=$?
            if [ -s "$err" ] || [ $rc -gt 1 ]; then echo W; elif [ $rc -eq 0 ]; then echo Y; else echo N; fi
        done < "$1"
        rm -f "$err"
    "#;
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new("bash")
                .args(["-c", script, "oracle"])
                .arg(f)
                .env("LC_ALL", "C")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("bash")
        })
        .collect();
    let mut answers = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("dpkg loop");
        assert!(out.status.success(), "dpkg loop failed (install dpkg)");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(
            !text.contains("command not found") && !text.is_empty(),
            "no answers from dpkg (install the apt package dpkg)"
        );
        answers.extend(text.lines().map(str::to_owned));
    }
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    // Turn "our answer holds" into the tool's answer for `check`.
    let answers: Vec<Option<Ordering>> = pairs
        .iter()
        .zip(&answers)
        .map(|((a, b), yes)| match (yes.as_str(), compare(Scheme::Dpkg, a, b)) {
            ("Y", Some(o)) => Some(o),
            ("Y" | "N", None) => Some(Ordering::Less),
            // dpkg says our answer does not hold: report it as a disagreement.
            ("N", Some(o)) => Some(if o == Ordering::Less { Ordering::Greater } else { Ordering::Less }),
            _ => None,
        })
        .collect();
    check(Scheme::Dpkg, &pairs, &answers, started);
}

const RPM: Grammar = Grammar {
    words: &["a", "b", "rc", "el", "fc", "git", "svn", "beta", "Z", "module", "el9_2", "alma", "x"],
    seps: &[".", ".", ".", "_", "+", "~", "^", "-", "~~", "^^", "", "#", "..", "~^", "^~"],
    alphabet: b"0123456789.~^-:_+azAZ% ",
    prefixes: &["1:", "0:", "00:", "12345678901234567890:", "a:", ":", "-", "~"],
    suffixes: &[
        "-1",
        "-0",
        "-1.el9",
        "-3.el9_2.1",
        "-0.1.rc1.fc39",
        "~rc1",
        "^git1",
        "^",
        "~",
        "-",
        ".",
        "-~",
        "-^1",
        "a",
        ".",
    ],
    edge: &[
        "",
        "0",
        "1",
        "1.0",
        "1.0-1",
        "1.0-",
        "1.0~rc1",
        "1.0^",
        "1.0^git1",
        "1.0~",
        "1.0~~",
        "1.0^^",
        "1:1.0",
        "0:1.0",
        ":1.0",
        "1:",
        "a",
        "1a",
        "1.a",
        "a1",
        "1.0a",
        "1_0",
        "1..0",
        "1.0.",
        "-1",
        "-",
        "~",
        "^",
        "1.0-1.el9",
        "1.0-1.el9_2",
        "2.02",
        "2.2",
        "01",
        "99999999999999999999999999",
        "1.0-1-1",
        "1:1:1",
        "1.0-~",
        "1.0-^",
    ],
};

#[test]
fn rpm_agrees_with_rpm_vercmp() {
    let started = Instant::now();
    let pairs = RPM.pairs(Scheme::Rpm, 0x0E9A, 12_000, 2_000);
    let file = write_pairs("rpm", &pairs);
    let lua = format!(
        "%{{lua: for line in io.lines('{}') do local a, b = line:match('^([^\\t]*)\\t([^\\t]*)$'); \
         local ok, r = pcall(rpm.vercmp, a, b); if ok then io.write(tostring(r), '\\n') else io.write('E\\n') end end}}",
        file.display()
    );
    let out = run(Command::new("rpm").args(["--eval", &lua]), "the apt package rpm");
    let _ = std::fs::remove_file(&file);
    let answers: Vec<_> = out.lines().filter(|l| !l.is_empty()).map(parse_answer).collect();
    check(Scheme::Rpm, &pairs, &answers, started);
}

const PEP440: Grammar = Grammar {
    words: &[
        "a", "b", "c", "rc", "alpha", "beta", "pre", "preview", "post", "rev", "r", "dev", "RC", "Post", "DEV", "x",
    ],
    seps: &[".", ".", ".", "-", "_", "", "..", "!", "+"],
    alphabet: b"0123456789.-_+!vVabcdeloprstv ",
    prefixes: &["v", "V", "1!", "0!", " ", "v1!", "00!"],
    suffixes: &[
        "a1",
        ".post1",
        "-1",
        ".dev0",
        "+local",
        "+ubuntu.1",
        "+abc.5.x",
        "rc",
        ".rev",
        "r",
        "-post-2",
        "_dev",
        "+",
        "+a..b",
        ".",
        " ",
        "a-1",
        "b.",
        "+01",
    ],
    edge: &[
        "",
        "0",
        "1",
        "1.0",
        "1.0.0",
        "v1.0",
        "1!0",
        "1.0.dev0",
        "1.0a1.dev1",
        "1.0a1",
        "1.0b1",
        "1.0rc1",
        "1.0c1",
        "1.0pre1",
        "1.0preview1",
        "1.0",
        "1.0+abc",
        "1.0+abc.5",
        "1.0+5",
        "1.0+05",
        "1.0+abc_5",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.0-1",
        "1.0r",
        "1.0rev",
        "1.0.1",
        "1.0a",
        "1.0.dev",
        "1.0-",
        "1.0.",
        "1..0",
        "1.0ab",
        "1.0+",
        "a",
        "1!",
        "!1",
        " 1.0 ",
        "1.0a-1",
        "1.0a.post1",
        "1.0.dev.",
        "01.02",
        "1.0POST1",
        "1.0-dev1",
    ],
};

#[test]
fn pep440_agrees_with_python_packaging() {
    let started = Instant::now();
    let pairs = PEP440.pairs(Scheme::Pep440, 0x9E94, 12_000, 2_000);
    let file = write_pairs("pep440", &pairs);
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
def parse(v):
    try:
        return Version(v)
    except InvalidVersion:
        return None
out = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        a, b = line.rstrip("\n").split("\t")
        va, vb = parse(a), parse(b)
        if va is None or vb is None:
            out.append("E")
        else:
            out.append("-1" if va < vb else "0" if va == vb else "1")
print("\n".join(out))
"#;
    let out = run(
        Command::new("python3").args(["-c", script]).arg(&file),
        "python3 and the PyPI package packaging (apt python3-packaging)",
    );
    let _ = std::fs::remove_file(&file);
    let answers: Vec<_> = out.lines().map(parse_answer).collect();
    check(Scheme::Pep440, &pairs, &answers, started);
}

const SEMVER: Grammar = Grammar {
    words: &["alpha", "beta", "rc", "x-y", "-", "a1", "0a", "pre", "SNAPSHOT", "Z"],
    seps: &[".", ".", ".", ".", "-", "+", ""],
    alphabet: b"0123456789.-+=vaz ",
    prefixes: &["v", "=", "=v", "v=v", " ", "vv", "V"],
    suffixes: &[
        "-alpha",
        "-alpha.1",
        "-0",
        "-1",
        "-01",
        "-rc.1",
        "+build.5",
        "+001",
        "-beta+exp.sha",
        "-",
        "+",
        "-a..b",
        "-x-y",
        "-9007199254740993",
        "-9007199254740992",
        "-9007199254740991",
        "-9007199254740990",
        ".0",
    ],
    edge: &[
        "",
        "1",
        "1.2",
        "1.2.3",
        "v1.2.3",
        "=1.2.3",
        "=v1.2.3",
        " 1.2.3 ",
        "1.2.3-0",
        "1.2.3-1",
        "1.2.3-10",
        "1.2.3-alpha",
        "1.2.3-alpha.1",
        "1.2.3-alpha.beta",
        "1.2.3-beta.2",
        "1.2.3-beta.11",
        "1.2.3-rc.1",
        "1.2.3+build",
        "1.2.3-01",
        "01.2.3",
        "1.2.3.4",
        "9007199254740991.0.0",
        "9007199254740992.0.0",
        "1.2.3-9007199254740993",
        "1.2.3-9007199254740992",
        "1.2.3-99999999999999999999",
        "1.2.3--",
        "1.2.3-a-b",
        "1.2.3-",
        "1.2.3+",
        "0.0.0",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
    ],
};

/// npm's bundled `semver` package, or `BERTH_NPM_SEMVER`.
fn npm_semver() -> String {
    if let Ok(p) = std::env::var("BERTH_NPM_SEMVER") {
        return p;
    }
    let candidates = [
        "/usr/lib/node_modules/npm/node_modules/semver",
        "/usr/local/lib/node_modules/npm/node_modules/semver",
        "/usr/share/nodejs/semver",
    ];
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).join("package.json").exists())
        .map(|p| (*p).to_owned())
        .unwrap_or_else(|| {
            panic!("npm's semver package not found in {candidates:?}: install node and npm (or set BERTH_NPM_SEMVER)")
        })
}

#[test]
fn semver_agrees_with_npm_semver() {
    let started = Instant::now();
    let pairs = SEMVER.pairs(Scheme::Semver, 0x5E77, 12_000, 2_000);
    let file = write_pairs("semver", &pairs);
    let script = r#"
const semver = require(process.argv[1]);
const fs = require('fs');
// npm's clean() without its reformatting: trim, drop leading = and v, parse.
const parse = (v) => semver.parse(v.trim().replace(/^[=v]+/, ''));
const out = [];
for (const line of fs.readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (line === '') continue;
  const [a, b] = line.split('\t');
  const va = parse(a), vb = parse(b);
  out.push(va === null || vb === null ? 'E' : String(va.compare(vb)));
}
process.stdout.write(out.join('\n') + '\n');
"#;
    let out = run(Command::new("node").args(["-e", script, &npm_semver()]).arg(&file), "node and npm (apt nodejs npm)");
    let _ = std::fs::remove_file(&file);
    let answers: Vec<_> = out.lines().map(parse_answer).collect();
    check(Scheme::Semver, &pairs, &answers, started);
}

const MAVEN: Grammar = Grammar {
    words: &[
        "alpha",
        "beta",
        "milestone",
        "rc",
        "cr",
        "snapshot",
        "SNAPSHOT",
        "ga",
        "final",
        "Final",
        "release",
        "RELEASE",
        "sp",
        "a",
        "b",
        "m",
        "M",
        "abc",
        "xyz",
        "jre",
        "android",
    ],
    seps: &[".", ".", "-", "-", ""],
    alphabet: b"0123456789.-abcmrsxAZ",
    prefixes: &["-", ".", "0.", "00"],
    suffixes: &[
        "-SNAPSHOT",
        ".Final",
        "-ga",
        "-rc1",
        "-M1",
        ".RELEASE",
        "-sp2",
        "-1",
        ".0",
        "-0",
        "-",
        ".",
        "a1",
        "-alpha-1",
        "-jre",
        "--1",
    ],
    edge: &[
        "1",
        "1.0",
        "1.0.0",
        "1-0",
        "1-0.1",
        "1-1",
        "1.1",
        "1-alpha",
        "1-alpha1",
        "1-a1",
        "1a1",
        "1.a1",
        "1-beta",
        "1-b1",
        "1-milestone",
        "1-m1",
        "1.M1",
        "1-rc",
        "1-cr",
        "1-snapshot",
        "1-ga",
        "1-final",
        "1-release",
        "1-sp",
        "1-abc",
        "1-xyz",
        "1.0-SNAPSHOT",
        "1.0.0.Final",
        "2.0-rc1",
        "",
        "-",
        ".",
        "1..0",
        "1--1",
        "1-",
        "1.",
        "01",
        "1.0.0.0.0.1",
        "a",
        "alpha",
        "1-1-1",
        "1.1-1",
        "1-1.1",
        "1.0-alpha-1",
        "1.0.RELEASE",
        "1.0.0-jre",
        "1234567890123",
        "12345678901234567890123",
    ],
};

#[test]
fn maven_agrees_with_comparable_version() {
    let started = Instant::now();
    // `ComparableVersion`'s main compares consecutive arguments: pass a1 b1 a2 b2 … and read
    // every other comparison. Arguments must be non-empty and without spaces.
    let pairs: Vec<_> = MAVEN
        .pairs(Scheme::Maven, 0x3A7E, 12_000, 0)
        .into_iter()
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .collect();
    let jar = "/usr/share/maven/lib/maven-artifact-3.x.jar";
    assert!(std::path::Path::new(jar).exists(), "{jar} is missing: install the apt package maven");
    let mut cmd = Command::new("java");
    cmd.args(["-cp", jar, "org.apache.maven.artifact.versioning.ComparableVersion"]);
    for (a, b) in &pairs {
        cmd.arg(a).arg(b);
    }
    let out = run(&mut cmd, "the apt packages maven and default-jre-headless");
    let comparisons: Vec<_> = out
        .lines()
        .filter(|l| l.starts_with("   "))
        .map(|l| match l.split_whitespace().nth(1) {
            Some("<") => Some(Ordering::Less),
            Some("==") => Some(Ordering::Equal),
            Some(">") => Some(Ordering::Greater),
            _ => None,
        })
        .collect();
    let answers: Vec<_> = comparisons.iter().step_by(2).copied().collect();
    check(Scheme::Maven, &pairs, &answers, started);
}

const RUBYGEMS: Grammar = Grammar {
    words: &["a", "b", "pre", "rc", "beta", "alpha", "dev", "Z", "x-y"],
    seps: &[".", ".", ".", "-", "", ".."],
    alphabet: b"0123456789.-abprZ_ ",
    prefixes: &[" ", "v", "-", "."],
    suffixes: &[".a", ".pre", "-pre", "-pre.1", ".rc1", "-rc.1", ".0", ".0.0", "a", "-", ".", " ", "-x-y", "-1"],
    edge: &[
        "",
        " ",
        "0",
        "1",
        "1.0",
        "1.0.0",
        "1.0.a",
        "1.0a",
        "1.0.a.0",
        "1.0.a.1",
        "1.0.b1",
        "1.0.pre",
        "1.0-pre",
        "1.0-pre.1",
        "1.0.rc1",
        "1.0-rc1",
        "1.0.1",
        "1.1.a",
        "1.a.1",
        "01",
        "1..0",
        "1.",
        ".1",
        "a",
        "1-",
        "1_0",
        "1.0-a-b",
        "1.0-1",
        "1.0.0.0.1",
        "99999999999999999999999",
    ],
};

#[test]
fn rubygems_agrees_with_gem_version() {
    let started = Instant::now();
    let pairs = RUBYGEMS.pairs(Scheme::RubyGems, 0x6E45, 12_000, 2_000);
    let file = write_pairs("rubygems", &pairs);
    let script = r#"
require "rubygems"
out = []
File.foreach(ARGV[0]) do |line|
  a, b = line.chomp("\n").split("\t", -1)
  if Gem::Version.correct?(a) && Gem::Version.correct?(b)
    out << (Gem::Version.new(a) <=> Gem::Version.new(b)).to_s
  else
    out << "E"
  end
end
puts out
"#;
    let out = run(Command::new("ruby").args(["-e", script]).arg(&file), "the apt package ruby");
    let _ = std::fs::remove_file(&file);
    let answers: Vec<_> = out.lines().map(parse_answer).collect();
    check(Scheme::RubyGems, &pairs, &answers, started);
}

const GO: Grammar = Grammar {
    words: &["alpha", "beta", "rc", "pre", "x-y", "-", "0a", "incompatible"],
    seps: &[".", ".", ".", ".", "-", "+", ""],
    alphabet: b"0123456789.-+vaz",
    prefixes: &["v", "v", "v", "vv", "V", ""],
    suffixes: &[
        "-0.20191109021931-daa7c04131f5",
        "-20191109021931-daa7c04131f5",
        "-rc.1.0.20230101000000-abcdefabcdef",
        "+incompatible",
        "-alpha",
        "-alpha.1",
        "-01",
        "-0",
        "-",
        "+",
        "-a..b",
        ".0",
    ],
    edge: &[
        "",
        "v",
        "v1",
        "v1.2",
        "v1.2.3",
        "1.2.3",
        "v1.0.0",
        "v1.0",
        "v0.0.0-20191109021931-daa7c04131f5",
        "v0.0.0-20200101000000-000000000000",
        "v1.2.4-0.20230101000000-abcdefabcdef",
        "v1.2.4-pre.0.20230101000000-abcdef",
        "v2.0.0+incompatible",
        "v2.0.1+incompatible",
        "v1.2-pre",
        "v01.2.3",
        "v1.2.3-01",
        "v1.2.3-",
        "v1.2.3+",
        "v1.2.3.4",
        "v99999999999999999999999.0.0",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "vv1",
    ],
};

#[test]
fn go_agrees_with_x_mod_semver() {
    let started = Instant::now();
    let goroot = run(Command::new("go").args(["env", "GOROOT"]), "the apt package golang-go");
    let vendored = PathBuf::from(goroot.trim()).join("src/cmd/vendor/golang.org/x/mod/semver/semver.go");
    let source = std::fs::read_to_string(&vendored)
        .unwrap_or_else(|e| panic!("{} ({e}): install the apt package golang-go", vendored.display()));
    let dir = scratch("go");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // The toolchain's own copy of golang.org/x/mod/semver, built beside a driver.
    std::fs::write(dir.join("semver.go"), source.replacen("package semver", "package main", 1)).expect("write");
    let driver = r#"package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	f, _ := os.Open(os.Args[1])
	in := bufio.NewScanner(f)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		p := strings.SplitN(in.Text(), "\t", 2)
		if !IsValid(p[0]) || !IsValid(p[1]) {
			fmt.Fprintln(out, "E")
		} else {
			fmt.Fprintln(out, Compare(p[0], p[1]))
		}
	}
}
"#;
    std::fs::write(dir.join("main.go"), driver).expect("write");
    let pairs = GO.pairs(Scheme::Go, 0x6060, 12_000, 2_000);
    // x/mod requires the `v`; our order also takes versions without it, as OSV writes them.
    let with_v = |s: &str| if s.starts_with('v') { s.to_owned() } else { format!("v{s}") };
    let tool_pairs: Vec<_> = pairs.iter().map(|(a, b)| (with_v(a), with_v(b))).collect();
    let file = write_pairs("go-pairs", &tool_pairs);
    let out = run(
        Command::new("go").args(["run", "main.go", "semver.go"]).arg(&file).current_dir(&dir).env("GO111MODULE", "off"),
        "the apt package golang-go",
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&dir);
    let answers: Vec<_> = out.lines().map(parse_answer).collect();
    check(Scheme::Go, &pairs, &answers, started);
}
