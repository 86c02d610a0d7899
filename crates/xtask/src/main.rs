//! `cargo run -p berth-xtask -- codegen [--check] [--botocore DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

fn usage() -> &'static str {
    "usage: xtask codegen [--check] [--botocore DIR]\n\
     \n\
     codegen     write crates/ecr-model/src/generated/*.rs from the botocore ECR models\n\
     --check     write nothing; exit 1 if the committed files differ from what would be written\n\
     --botocore  botocore package directory (default: ask python3 where botocore is installed)"
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else {
        eprintln!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    if cmd != "codegen" {
        bail!("unknown command {cmd:?}\n{}", usage());
    }
    let mut check = false;
    let mut botocore: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--botocore" => botocore = Some(args.next().context("--botocore needs a directory")?.into()),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(ExitCode::SUCCESS);
            }
            other => bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    let botocore = match botocore {
        Some(b) => b,
        None => berth_xtask::find_botocore()?,
    };
    let root = berth_xtask::workspace_root();
    let files = berth_xtask::generate(&botocore, &root)?;
    if check {
        let stale = berth_xtask::stale_files(&root, &files)?;
        if stale.is_empty() {
            println!("codegen: {} files up to date", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for f in &stale {
            eprintln!("codegen: {} is out of date", f.display());
        }
        eprintln!("codegen: run `cargo run -p berth-xtask -- codegen` and commit the result");
        return Ok(ExitCode::FAILURE);
    }
    for f in &files {
        let path = root.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, &f.contents).with_context(|| format!("writing {}", path.display()))?;
        println!("codegen: wrote {}", f.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
