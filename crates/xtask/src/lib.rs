//! Berth's code generator: turns the ECR and ECR Public service models that ship in botocore into
//! the committed Rust sources of `berth-ecr-model`.
//!
//! Output is deterministic: shapes, members, operations and errors are emitted in sorted order and
//! the text goes through `rustfmt` with the workspace's `rustfmt.toml`, so `codegen --check` can
//! compare bytes. Documentation strings of the model are never read into the output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

/// The botocore release the committed output was generated from.
pub const BOTOCORE_VERSION: &str = "1.43.11";

/// One model to generate.
struct Service {
    /// Directory under `botocore/data`.
    model_dir: &'static str,
    /// Output file, relative to the workspace root.
    out: &'static str,
    /// Name of the operation enum; the request enum is `<prefix>Request`.
    prefix: &'static str,
    /// Where the examples' request bodies go (if the model has examples).
    examples_out: Option<&'static str>,
}

const SERVICES: &[Service] = &[
    Service {
        model_dir: "ecr/2015-09-21",
        out: "crates/ecr-model/src/generated/ecr.rs",
        prefix: "Ecr",
        examples_out: Some("crates/ecr-model/tests/fixtures/ecr-examples.json"),
    },
    Service {
        model_dir: "ecr-public/2020-10-30",
        out: "crates/ecr-model/src/generated/public.rs",
        prefix: "EcrPublic",
        examples_out: None,
    },
];

/// A file the generator produces.
pub struct GeneratedFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    pub contents: String,
}

/// The workspace root (two levels above this crate).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| {
        // Fall back to the uncanonicalised path; every later use reports its own error.
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    })
}

/// Ask `python3` where botocore is installed.
///
/// # Errors
/// If python3 or botocore is missing.
pub fn find_botocore() -> anyhow::Result<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import botocore, os; print(os.path.dirname(botocore.__file__))"])
        .output()
        .context("running python3 to locate botocore (or pass --botocore DIR)")?;
    ensure!(
        out.status.success(),
        "python3 could not import botocore (pip install botocore=={BOTOCORE_VERSION}, or pass --botocore DIR): {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Read `__version__` from botocore's `__init__.py`.
fn botocore_version(dir: &Path) -> anyhow::Result<String> {
    let init = std::fs::read_to_string(dir.join("__init__.py"))
        .with_context(|| format!("reading {}/__init__.py", dir.display()))?;
    for line in init.lines() {
        if let Some(rest) = line.strip_prefix("__version__") {
            let v = rest.trim_start().trim_start_matches('=').trim().trim_matches(['\'', '"']);
            return Ok(v.to_owned());
        }
    }
    bail!("no __version__ in {}/__init__.py", dir.display())
}

/// Generate every output file (formatted) from the models under `botocore`.
///
/// # Errors
/// If a model cannot be read, has a shape this generator does not handle, or rustfmt fails.
pub fn generate(botocore: &Path, root: &Path) -> anyhow::Result<Vec<GeneratedFile>> {
    let version = botocore_version(botocore)?;
    ensure!(
        version == BOTOCORE_VERSION,
        "botocore at {} is {version}, but the committed output is pinned to {BOTOCORE_VERSION}; \
         install that version, or bump BOTOCORE_VERSION in crates/xtask/src/lib.rs to regenerate",
        botocore.display()
    );
    let mut files = Vec::new();
    for svc in SERVICES {
        let dir = botocore.join("data").join(svc.model_dir);
        let model = load_model(&dir.join("service-2.json.gz"))?;
        let code = Gen::new(svc, &model)?.render()?;
        let code = rustfmt(&code, root)?;
        files.push(GeneratedFile { path: svc.out.into(), contents: code });
        if let Some(out) = svc.examples_out {
            let examples = dir.join("examples-1.json");
            if examples.exists() {
                files.push(GeneratedFile { path: out.into(), contents: example_inputs(&examples)? });
            }
        }
    }
    Ok(files)
}

/// Files whose committed content differs from `files` (missing files count as different).
///
/// # Errors
/// Never for a missing file; for other I/O errors.
pub fn stale_files(root: &Path, files: &[GeneratedFile]) -> anyhow::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for f in files {
        match std::fs::read_to_string(root.join(&f.path)) {
            Ok(s) if s == f.contents => {}
            Ok(_) => stale.push(f.path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => stale.push(f.path.clone()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", f.path.display())),
        }
    }
    Ok(stale)
}

fn load_model(path: &Path) -> anyhow::Result<Model> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .with_context(|| format!("gunzipping {}", path.display()))?;
    serde_json::from_str(&json).with_context(|| format!("parsing {}", path.display()))
}

/// The request bodies of `examples-1.json`, by operation, without the examples' prose.
fn example_inputs(path: &Path) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Examples {
        examples: BTreeMap<String, Vec<Example>>,
    }
    #[derive(Deserialize)]
    struct Example {
        #[serde(default)]
        input: Option<serde_json::Value>,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ex: Examples = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let out: BTreeMap<String, Vec<serde_json::Value>> = ex
        .examples
        .into_iter()
        .map(|(op, xs)| (op, xs.into_iter().map(|x| x.input.unwrap_or_else(|| serde_json::json!({}))).collect()))
        .collect();
    Ok(serde_json::to_string_pretty(&out)? + "\n")
}

fn rustfmt(code: &str, root: &Path) -> anyhow::Result<String> {
    let mut child = Command::new(std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into()))
        .arg("--edition=2024")
        .arg("--config-path")
        .arg(root.join("rustfmt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt")?;
    let mut stdin = child.stdin.take().context("rustfmt stdin")?;
    let input = code.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("rustfmt writer panicked"))??;
    ensure!(out.status.success(), "rustfmt failed on generated code:\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

// ---------------------------------------------------------------------------------------------
// The botocore model (only the parts we use; `documentation` is deliberately not read).

#[derive(Deserialize)]
struct Model {
    metadata: Metadata,
    operations: BTreeMap<String, Operation>,
    shapes: BTreeMap<String, Shape>,
}

#[derive(Deserialize)]
struct Metadata {
    protocol: String,
    #[serde(rename = "targetPrefix")]
    target_prefix: String,
}

#[derive(Deserialize)]
struct Operation {
    name: String,
    input: Option<ShapeRef>,
    output: Option<ShapeRef>,
    #[serde(default)]
    errors: Vec<ShapeRef>,
}

#[derive(Deserialize)]
struct ShapeRef {
    shape: String,
    #[serde(rename = "jsonName")]
    json_name: Option<String>,
}

#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    exception: bool,
    #[serde(default)]
    fault: bool,
    error: Option<ErrorTrait>,
}

#[derive(Deserialize)]
struct ErrorTrait {
    code: Option<String>,
    #[serde(rename = "httpStatusCode")]
    http_status_code: Option<u16>,
    #[serde(rename = "senderFault")]
    sender_fault: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Rendering.

/// Type names the generated module uses unqualified, which a shape must not shadow.
const RESERVED_TYPES: &[&str] =
    &["String", "Vec", "Option", "Some", "None", "Box", "Result", "Ok", "Err", "Self", "Blob", "EpochSeconds"];

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

struct Gen<'a> {
    svc: &'a Service,
    m: &'a Model,
    /// Structures reachable from some operation's input: they get `Validate` and `Required`.
    input_reach: BTreeSet<&'a str>,
    /// Shapes whose JSON may hide a missing required member somewhere below.
    needs_required: BTreeSet<&'a str>,
    patterns: BTreeMap<&'a str, usize>,
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `repositoryName` -> `repository_name`, `Key` -> `key`, `type` -> `r#type`.
fn field_name(member: &str) -> String {
    let cs: Vec<char> = member.chars().collect();
    let mut out = String::new();
    for (i, &c) in cs.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (cs[i - 1].is_ascii_lowercase() || cs[i - 1].is_ascii_digit());
            let acronym_end =
                i > 0 && cs[i - 1].is_ascii_uppercase() && cs.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev_lower || acronym_end {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    if KEYWORDS.contains(&out.as_str()) { format!("r#{out}") } else { out }
}

/// `IMMUTABLE_WITH_EXCLUSION` -> `ImmutableWithExclusion`, `docker-hub` -> `DockerHub`,
/// `InvalidImageDigest` -> `InvalidImageDigest`.
fn variant_name(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mixed = part.chars().any(|c| c.is_ascii_uppercase()) && part.chars().any(|c| c.is_ascii_lowercase());
        let mut cs = part.chars();
        if let Some(first) = cs.next() {
            out.push(first.to_ascii_uppercase());
            if mixed {
                out.extend(cs);
            } else {
                out.extend(cs.map(|c| c.to_ascii_lowercase()));
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn opt_i64(v: Option<i64>) -> String {
    v.map_or_else(|| "None".to_owned(), |n| format!("Some({n})"))
}

impl<'a> Gen<'a> {
    fn new(svc: &'a Service, m: &'a Model) -> anyhow::Result<Self> {
        ensure!(m.metadata.protocol == "json", "{}: protocol {} is not AWS JSON", svc.model_dir, m.metadata.protocol);
        let mut g =
            Gen { svc, m, input_reach: BTreeSet::new(), needs_required: BTreeSet::new(), patterns: BTreeMap::new() };
        for (name, s) in &m.shapes {
            ensure!(is_ident(name), "shape name {name:?} is not a Rust identifier");
            if matches!(s.ty.as_str(), "structure") || s.enum_values.is_some() {
                ensure!(!RESERVED_TYPES.contains(&name.as_str()), "shape {name} would shadow a Rust type");
            }
            for r in s.members.values().chain(&s.member).chain(&s.key).chain(&s.value) {
                ensure!(m.shapes.contains_key(&r.shape), "{name} refers to unknown shape {}", r.shape);
            }
            for req in &s.required {
                ensure!(s.members.contains_key(req), "{name} requires unknown member {req}");
            }
        }
        let mut stack: Vec<&str> = m.operations.values().filter_map(|o| o.input.as_ref()).map(|r| &*r.shape).collect();
        while let Some(n) = stack.pop() {
            let s = &m.shapes[n];
            if s.ty == "structure" && !g.input_reach.insert(n) {
                continue;
            }
            for r in s.members.values().chain(&s.member).chain(&s.key).chain(&s.value) {
                stack.push(&r.shape);
            }
        }
        // Fixed point: a shape needs a JSON presence walk if it has required members or contains a
        // shape that does. (The models are not recursive, but a fixed point does not care.)
        loop {
            let before = g.needs_required.len();
            for (n, s) in &m.shapes {
                let needs = !s.required.is_empty()
                    || s.members
                        .values()
                        .chain(&s.member)
                        .chain(&s.value)
                        .any(|r| g.needs_required.contains(&*r.shape));
                if needs {
                    g.needs_required.insert(n);
                }
            }
            if g.needs_required.len() == before {
                break;
            }
        }
        for n in g.input_reach.clone() {
            for r in m.shapes[n].members.values() {
                g.collect_patterns(&r.shape, &mut BTreeSet::new());
            }
        }
        Ok(g)
    }

    fn collect_patterns(&mut self, shape: &'a str, seen: &mut BTreeSet<&'a str>) {
        if !seen.insert(shape) {
            return;
        }
        let s = &self.m.shapes[shape];
        if let Some(p) = &s.pattern
            && s.ty == "string"
            && s.enum_values.is_none()
        {
            let n = self.patterns.len();
            self.patterns.entry(p).or_insert(n);
        }
        if s.ty != "structure" {
            for r in s.member.iter().chain(&s.key).chain(&s.value) {
                self.collect_patterns(&r.shape, seen);
            }
        }
    }

    fn rust_type(&self, shape: &str) -> anyhow::Result<String> {
        let s = &self.m.shapes[shape];
        Ok(match s.ty.as_str() {
            "structure" => shape.to_owned(),
            "string" if s.enum_values.is_some() => shape.to_owned(),
            "string" => "String".to_owned(),
            "integer" => "i32".to_owned(),
            "long" => "i64".to_owned(),
            "boolean" => "bool".to_owned(),
            "double" => "f64".to_owned(),
            "float" => "f32".to_owned(),
            "timestamp" => "crate::EpochSeconds".to_owned(),
            "blob" => "crate::Blob".to_owned(),
            "list" => format!("Vec<{}>", self.rust_type(&s.member.as_ref().context("list without member")?.shape)?),
            "map" => format!(
                "::std::collections::BTreeMap<{}, {}>",
                self.rust_type(&s.key.as_ref().context("map without key")?.shape)?,
                self.rust_type(&s.value.as_ref().context("map without value")?.shape)?
            ),
            other => bail!("shape {shape}: type {other} is not handled"),
        })
    }

    fn render(&self) -> anyhow::Result<String> {
        let mut o = String::new();
        let m = self.m;
        writeln!(o, "// @generated by `cargo run -p berth-xtask -- codegen` from botocore {BOTOCORE_VERSION}")?;
        writeln!(
            o,
            "// (data/{}/service-2.json.gz). Do not edit: change crates/xtask and regenerate.",
            self.svc.model_dir
        )?;
        writeln!(o, "// Shapes and names only; the model's documentation is deliberately not copied.")?;
        writeln!(o)?;
        writeln!(
            o,
            "#![allow(clippy::large_enum_variant, clippy::too_many_lines, clippy::match_same_arms, clippy::unreadable_literal)]"
        )?;
        writeln!(o)?;
        writeln!(o, "use serde::{{Deserialize, Serialize}};")?;
        writeln!(o)?;

        self.render_ops(&mut o)?;
        self.render_errors(&mut o)?;

        // Patterns.
        let mut pats: Vec<(&str, usize)> = self.patterns.iter().map(|(p, i)| (*p, *i)).collect();
        pats.sort_by_key(|(_, i)| *i);
        writeln!(o, "/// Every `pattern` an input can be checked against, in first-use order.")?;
        writeln!(o, "pub static PATTERNS: &[&crate::validate::Pattern] = &[")?;
        for (_, i) in &pats {
            writeln!(o, "&PATTERN_{i},")?;
        }
        writeln!(o, "];")?;
        for (p, i) in &pats {
            writeln!(
                o,
                "static PATTERN_{i}: crate::validate::Pattern = crate::validate::Pattern {{ source: {}, regex: ::std::sync::LazyLock::new(|| crate::validate::compile({})) }};",
                lit(p),
                lit(p)
            )?;
        }
        writeln!(o)?;

        // Enums.
        for (name, s) in &m.shapes {
            let Some(values) = &s.enum_values else { continue };
            ensure!(s.ty == "string", "enum {name} is not a string shape");
            let mut seen = BTreeSet::new();
            writeln!(o, "crate::string_enum! {{\n    {name} {{")?;
            for v in values {
                let var = variant_name(v);
                ensure!(is_ident(&var) && var != "Unknown", "enum {name}: value {v:?} gives variant {var:?}");
                ensure!(seen.insert(var.clone()), "enum {name}: two values map to variant {var}");
                writeln!(o, "        {var} = {},", lit(v))?;
            }
            writeln!(o, "    }}\n}}\n")?;
        }

        // Structures.
        for (name, s) in &m.shapes {
            if s.ty != "structure" {
                continue;
            }
            self.render_struct(&mut o, name, s)?;
        }
        Ok(o)
    }

    fn render_ops(&self, o: &mut String) -> anyhow::Result<()> {
        let m = self.m;
        let op_enum = format!("{}Op", self.svc.prefix);
        let req_enum = format!("{}Request", self.svc.prefix);
        let prefix = &m.metadata.target_prefix;
        let ops: Vec<(&String, &Operation)> = m.operations.iter().collect();
        for (k, op) in &ops {
            ensure!(*k == &op.name && is_ident(k), "operation {k} has name {}", op.name);
        }
        let io = |op: &Operation| -> anyhow::Result<(String, String)> {
            let i = op.input.as_ref().with_context(|| format!("{} has no input", op.name))?;
            let out = op.output.as_ref().with_context(|| format!("{} has no output", op.name))?;
            ensure!(m.shapes[&i.shape].ty == "structure" && m.shapes[&out.shape].ty == "structure");
            Ok((i.shape.clone(), out.shape.clone()))
        };

        writeln!(o, "/// The service's `X-Amz-Target` prefix.")?;
        writeln!(o, "pub const TARGET_PREFIX: &str = {};\n", lit(prefix))?;
        writeln!(o, "/// Every operation of the model.")?;
        writeln!(o, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]")?;
        writeln!(o, "pub enum {op_enum} {{")?;
        for (k, _) in &ops {
            writeln!(o, "{k},")?;
        }
        writeln!(o, "}}\n")?;
        writeln!(o, "impl {op_enum} {{")?;
        writeln!(o, "pub const ALL: &'static [Self] = &[")?;
        for (k, _) in &ops {
            writeln!(o, "Self::{k},")?;
        }
        writeln!(o, "];\n")?;
        writeln!(o, "/// Parse a full `X-Amz-Target` header value (`{prefix}.<Operation>`).")?;
        writeln!(o, "#[must_use]\npub fn from_target(target: &str) -> Option<Self> {{\nmatch target {{")?;
        for (k, _) in &ops {
            writeln!(o, "{} => Some(Self::{k}),", lit(&format!("{prefix}.{k}")))?;
        }
        writeln!(o, "_ => None,\n}}\n}}\n")?;
        writeln!(o, "/// Parse a bare operation name.")?;
        writeln!(o, "#[must_use]\npub fn from_name(name: &str) -> Option<Self> {{\nmatch name {{")?;
        for (k, _) in &ops {
            writeln!(o, "{} => Some(Self::{k}),", lit(k))?;
        }
        writeln!(o, "_ => None,\n}}\n}}\n")?;
        let table =
            |o: &mut String, f: &str, doc: &str, ty: &str, val: &dyn Fn(&Operation) -> anyhow::Result<String>| {
                writeln!(o, "/// {doc}\n#[must_use]\npub fn {f}(&self) -> {ty} {{\nmatch self {{")?;
                for (k, op) in &ops {
                    writeln!(o, "Self::{k} => {},", val(op)?)?;
                }
                writeln!(o, "}}\n}}\n")?;
                anyhow::Ok(())
            };
        table(o, "name", "The operation name.", "&'static str", &|op| Ok(lit(&op.name)))?;
        table(o, "target", "The full `X-Amz-Target` value.", "&'static str", &|op| {
            Ok(lit(&format!("{prefix}.{}", op.name)))
        })?;
        table(o, "input_type", "Name of the input structure.", "&'static str", &|op| Ok(lit(&io(op)?.0)))?;
        table(o, "output_type", "Name of the output structure.", "&'static str", &|op| Ok(lit(&io(op)?.1)))?;
        table(o, "errors", "Exception shapes the operation may return, sorted.", "&'static [&'static str]", &|op| {
            let errs: BTreeSet<&str> = op.errors.iter().map(|e| &*e.shape).collect();
            for e in &errs {
                ensure!(m.shapes[*e].exception, "{}: error {e} is not an exception shape", op.name);
            }
            Ok(format!("&[{}]", errs.iter().map(|e| lit(e)).collect::<Vec<_>>().join(", ")))
        })?;
        writeln!(o, "}}\n")?;

        writeln!(o, "/// A decoded and validated request of any operation.")?;
        writeln!(o, "#[derive(Debug, Clone, PartialEq)]\npub enum {req_enum} {{")?;
        for (k, op) in &ops {
            writeln!(o, "{k}({}),", io(op)?.0)?;
        }
        writeln!(o, "}}\n")?;
        writeln!(o, "impl {req_enum} {{")?;
        writeln!(o, "/// Decode `body` as the input of `op`, checking required members and constraints.")?;
        writeln!(o, "///\n/// # Errors\n/// See [`crate::decode_input`].")?;
        writeln!(
            o,
            "pub fn decode(op: {op_enum}, body: &[u8]) -> Result<Self, crate::DecodeError> {{\nOk(match op {{"
        )?;
        for (k, _) in &ops {
            writeln!(o, "{op_enum}::{k} => Self::{k}(crate::decode_input(body)?),")?;
        }
        writeln!(o, "}})\n}}\n")?;
        writeln!(o, "#[must_use]\npub fn op(&self) -> {op_enum} {{\nmatch self {{")?;
        for (k, _) in &ops {
            writeln!(o, "Self::{k}(_) => {op_enum}::{k},")?;
        }
        writeln!(o, "}}\n}}\n}}\n")?;
        for (_, op) in &ops {
            let (i, _) = io(op)?;
            writeln!(o, "impl {i} {{")?;
            writeln!(o, "/// Check the model's constraints (lengths, ranges, patterns, enum values).")?;
            writeln!(o, "///\n/// # Errors\n/// Every violation, in AWS's message format.")?;
            writeln!(o, "pub fn validate(&self) -> Result<(), crate::ValidationError> {{")?;
            writeln!(o, "crate::validate::Validate::validate(self)\n}}\n}}\n")?;
        }
        Ok(())
    }

    fn render_errors(&self, o: &mut String) -> anyhow::Result<()> {
        let errs: Vec<(&String, &Shape)> = self.m.shapes.iter().filter(|(_, s)| s.exception).collect();
        writeln!(o, "/// Every exception shape of the model.")?;
        writeln!(o, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum ErrorCode {{")?;
        for (n, _) in &errs {
            writeln!(o, "{n},")?;
        }
        writeln!(o, "}}\n")?;
        writeln!(o, "/// Code, HTTP status and fault of every exception shape, sorted by name.")?;
        writeln!(o, "pub const ERRORS: &[crate::ErrorInfo] = &[")?;
        let mut infos = Vec::new();
        for (n, s) in &errs {
            let server = s.fault || s.error.as_ref().and_then(|e| e.sender_fault) == Some(false);
            let status = s.error.as_ref().and_then(|e| e.http_status_code).unwrap_or(if server { 500 } else { 400 });
            let code = s.error.as_ref().and_then(|e| e.code.clone()).unwrap_or_else(|| (*n).clone());
            let fault = if server { "Server" } else { "Client" };
            writeln!(
                o,
                "crate::ErrorInfo {{ name: {}, code: {}, http_status: {status}, fault: crate::Fault::{fault} }},",
                lit(n),
                lit(&code)
            )?;
            infos.push(n);
        }
        writeln!(o, "];\n")?;
        writeln!(o, "impl ErrorCode {{")?;
        writeln!(o, "pub const ALL: &'static [Self] = &[")?;
        for (n, _) in &errs {
            writeln!(o, "Self::{n},")?;
        }
        writeln!(o, "];\n")?;
        writeln!(o, "/// The shape's table entry.\n#[must_use]\npub fn info(self) -> &'static crate::ErrorInfo {{")?;
        writeln!(o, "&ERRORS[self as usize]\n}}\n")?;
        writeln!(o, "#[must_use]\npub fn name(self) -> &'static str {{\nself.info().name\n}}\n")?;
        writeln!(o, "#[must_use]\npub fn http_status(self) -> u16 {{\nself.info().http_status\n}}\n")?;
        writeln!(o, "#[must_use]\npub fn fault(self) -> crate::Fault {{\nself.info().fault\n}}\n")?;
        writeln!(o, "/// Look a shape up by name.\n#[must_use]\npub fn from_name(name: &str) -> Option<Self> {{")?;
        writeln!(o, "ERRORS.binary_search_by(|e| e.name.cmp(name)).ok().map(|i| Self::ALL[i])\n}}\n}}\n")?;
        Ok(())
    }

    fn render_struct(&self, o: &mut String, name: &str, s: &Shape) -> anyhow::Result<()> {
        let all_optional = s.required.is_empty();
        let derives = if all_optional {
            "Debug, Clone, PartialEq, Default, Serialize, Deserialize"
        } else {
            "Debug, Clone, PartialEq, Serialize, Deserialize"
        };
        writeln!(o, "#[derive({derives})]\npub struct {name} {{")?;
        let mut fields = BTreeSet::new();
        for (mname, r) in &s.members {
            let f = field_name(mname);
            ensure!(fields.insert(f.clone()), "{name}: two members map to field {f}");
            let wire = r.json_name.as_deref().unwrap_or(mname);
            let ty = self.rust_type(&r.shape)?;
            let rename =
                if f.trim_start_matches("r#") == wire { String::new() } else { format!("rename = {}", lit(wire)) };
            if s.required.contains(mname) {
                if !rename.is_empty() {
                    writeln!(o, "#[serde({rename})]")?;
                }
                writeln!(o, "pub {f}: {ty},")?;
            } else {
                let mut attrs = vec![];
                if !rename.is_empty() {
                    attrs.push(rename);
                }
                attrs.push("default".to_owned());
                attrs.push("skip_serializing_if = \"Option::is_none\"".to_owned());
                writeln!(o, "#[serde({})]", attrs.join(", "))?;
                writeln!(o, "pub {f}: Option<{ty}>,")?;
            }
        }
        writeln!(o, "}}\n")?;
        if self.input_reach.contains(name) {
            self.render_validate(o, name, s)?;
            self.render_required(o, name, s)?;
        }
        Ok(())
    }

    fn render_validate(&self, o: &mut String, name: &str, s: &Shape) -> anyhow::Result<()> {
        let mut body = String::new();
        for (mname, r) in &s.members {
            let f = field_name(mname);
            let wire = r.json_name.as_deref().unwrap_or(mname);
            let Some(code) = self.check_value(&r.shape, "x", "&p", 0)? else { continue };
            let bind = if s.required.contains(mname) {
                format!("{{\nlet x = &self.{f};\n")
            } else {
                format!("if let Some(x) = &self.{f} {{\n")
            };
            write!(body, "{bind}let p = crate::validate::join(path, {});\n{code}}}\n", lit(wire))?;
        }
        let (path, out) = if body.is_empty() { ("_path", "_out") } else { ("path", "out") };
        writeln!(o, "impl crate::validate::Validate for {name} {{")?;
        writeln!(
            o,
            "fn validate_at(&self, {path}: &str, {out}: &mut Vec<crate::validate::Violation>) {{\n{body}}}\n}}\n"
        )?;
        Ok(())
    }

    /// Code checking the value `x` (a reference) at path expression `p` (a `&str`), or `None`
    /// when the shape has nothing to check.
    #[allow(clippy::many_single_char_names)]
    fn check_value(&self, shape: &str, x: &str, p: &str, depth: usize) -> anyhow::Result<Option<String>> {
        let s = &self.m.shapes[shape];
        let (min, max) = (opt_i64(s.min), opt_i64(s.max));
        let bounded = s.min.is_some() || s.max.is_some();
        Ok(match s.ty.as_str() {
            "string" if s.enum_values.is_some() => Some(format!("crate::validate::enum_value(out, {p}, {x});\n")),
            "string" => {
                let pat = s.pattern.as_deref().map(|pt| format!("Some(&PATTERN_{})", self.patterns[pt]));
                (bounded || pat.is_some()).then(|| {
                    format!(
                        "crate::validate::string(out, {p}, {x}, {min}, {max}, {});\n",
                        pat.unwrap_or_else(|| "None".to_owned())
                    )
                })
            }
            "integer" => {
                bounded.then(|| format!("crate::validate::number(out, {p}, i64::from(*{x}), {min}, {max});\n"))
            }
            "long" => bounded.then(|| format!("crate::validate::number(out, {p}, *{x}, {min}, {max});\n")),
            "blob" => bounded.then(|| {
                format!("crate::validate::length(out, {p}, {x}.0.len(), {min}, {max}, || format!(\"<{{}} bytes>\", {x}.0.len()));\n")
            }),
            "structure" => Some(format!("crate::validate::Validate::validate_at({x}, {p}, out);\n")),
            "list" => {
                let member = &s.member.as_ref().context("list without member")?.shape;
                let (e, i, pe) = (format!("e{depth}"), format!("i{depth}"), format!("p{depth}"));
                let inner = self.check_value(member, &e, &format!("&{pe}"), depth + 1)?;
                let mut code = String::new();
                if bounded {
                    let scalar = matches!(self.m.shapes[member].ty.as_str(), "string" | "integer" | "long");
                    let show = if scalar {
                        format!("crate::validate::show_list({x})")
                    } else {
                        format!("::serde_json::to_string({x}).unwrap_or_default()")
                    };
                    writeln!(code, "crate::validate::length(out, {p}, {x}.len(), {min}, {max}, || {show});")?;
                }
                if let Some(inner) = inner {
                    write!(
                        code,
                        "for ({i}, {e}) in {x}.iter().enumerate() {{\nlet {pe} = crate::validate::element({p}, {i});\n{inner}}}\n"
                    )?;
                }
                (!code.is_empty()).then_some(code)
            }
            "map" => {
                let key = &s.key.as_ref().context("map without key")?.shape;
                let value = &s.value.as_ref().context("map without value")?.shape;
                let (k, v, pe) = (format!("k{depth}"), format!("v{depth}"), format!("p{depth}"));
                let kc = self.check_value(key, &k, &format!("&{pe}"), depth + 1)?;
                let vc = self.check_value(value, &v, &format!("&{pe}"), depth + 1)?;
                let mut code = String::new();
                if bounded {
                    writeln!(
                        code,
                        "crate::validate::length(out, {p}, {x}.len(), {min}, {max}, || ::serde_json::to_string({x}).unwrap_or_default());"
                    )?;
                }
                if kc.is_some() || vc.is_some() {
                    let vb = if vc.is_some() { v.as_str() } else { "_" };
                    write!(
                        code,
                        "for ({k}, {vb}) in {x} {{\nlet {pe} = crate::validate::join({p}, &{k}.to_string());\n{}{}}}\n",
                        kc.unwrap_or_default(),
                        vc.unwrap_or_default()
                    )?;
                }
                (!code.is_empty()).then_some(code)
            }
            _ => None,
        })
    }

    fn render_required(&self, o: &mut String, name: &str, s: &Shape) -> anyhow::Result<()> {
        let mut body = String::new();
        for (mname, r) in &s.members {
            let wire = r.json_name.as_deref().unwrap_or(mname);
            if s.required.contains(mname) {
                writeln!(body, "crate::validate::required(out, value, path, {});", lit(wire))?;
            }
            if let Some(walk) = self.walk_required(&r.shape, "m", "&p", 0)? {
                write!(
                    body,
                    "if let Some(m) = value.get({}) {{\nlet p = crate::validate::join(path, {});\n{walk}}}\n",
                    lit(wire),
                    lit(wire)
                )?;
            }
        }
        let (v, p, out) = if body.is_empty() { ("_value", "_path", "_out") } else { ("value", "path", "out") };
        writeln!(o, "impl crate::validate::Required for {name} {{")?;
        writeln!(
            o,
            "fn check_required({v}: &::serde_json::Value, {p}: &str, {out}: &mut Vec<crate::validate::Violation>) {{\n{body}}}\n}}\n"
        )?;
        Ok(())
    }

    /// Code walking the JSON value `j` at path `p` for missing required members below it.
    #[allow(clippy::many_single_char_names)]
    fn walk_required(&self, shape: &str, j: &str, p: &str, depth: usize) -> anyhow::Result<Option<String>> {
        if !self.needs_required.contains(shape) {
            return Ok(None);
        }
        let s = &self.m.shapes[shape];
        let (e, i, pe) = (format!("e{depth}"), format!("i{depth}"), format!("p{depth}"));
        Ok(match s.ty.as_str() {
            "structure" => Some(format!("<{shape} as crate::validate::Required>::check_required({j}, {p}, out);\n")),
            "list" => {
                let member = &s.member.as_ref().context("list without member")?.shape;
                self.walk_required(member, &e, &format!("&{pe}"), depth + 1)?.map(|inner| {
                    format!(
                        "if let Some(a) = {j}.as_array() {{\nfor ({i}, {e}) in a.iter().enumerate() {{\nlet {pe} = crate::validate::element({p}, {i});\n{inner}}}\n}}\n"
                    )
                })
            }
            "map" => {
                let value = &s.value.as_ref().context("map without value")?.shape;
                self.walk_required(value, &e, &format!("&{pe}"), depth + 1)?.map(|inner| {
                    format!(
                        "if let Some(obj) = {j}.as_object() {{\nfor (k, {e}) in obj {{\nlet {pe} = crate::validate::join({p}, k);\n{inner}}}\n}}\n"
                    )
                })
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated tables cover the whole model (the committed text is checked byte for byte
    /// by `tests/codegen_check.rs`; this pins the counts).
    #[test]
    fn counts_match_the_model() {
        let dir = std::env::var_os("BOTOCORE_DIR").map_or_else(|| find_botocore().unwrap(), PathBuf::from);
        for (svc, ops, shapes, errors) in [(&SERVICES[0], 58, 404, 47), (&SERVICES[1], 23, 149, 24)] {
            let m = load_model(&dir.join("data").join(svc.model_dir).join("service-2.json.gz")).unwrap();
            assert_eq!(m.operations.len(), ops, "{}", svc.model_dir);
            assert_eq!(m.shapes.len(), shapes, "{}", svc.model_dir);
            assert_eq!(m.shapes.values().filter(|s| s.exception).count(), errors);
            let code = Gen::new(svc, &m).unwrap().render().unwrap();
            for name in m.operations.keys() {
                assert!(code.contains(&format!("\"{}.{name}\" => Some(Self::{name}),", m.metadata.target_prefix)));
            }
            for (name, s) in &m.shapes {
                if s.ty == "structure" {
                    assert!(code.contains(&format!("pub struct {name} {{")), "{name}");
                }
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(field_name("repositoryName"), "repository_name");
        assert_eq!(field_name("Key"), "key");
        assert_eq!(field_name("type"), "r#type");
        assert_eq!(field_name("awsEcrContainerImage"), "aws_ecr_container_image");
        assert_eq!(field_name("kmsKeyARN"), "kms_key_arn");
        assert_eq!(variant_name("IMMUTABLE_WITH_EXCLUSION"), "ImmutableWithExclusion");
        assert_eq!(variant_name("docker-hub"), "DockerHub");
        assert_eq!(variant_name("InvalidImageDigest"), "InvalidImageDigest");
        assert_eq!(variant_name("AES256"), "Aes256");
        assert_eq!(variant_name("ecr"), "Ecr");
    }
}
