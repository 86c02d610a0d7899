//! The committed output of `codegen` is exactly what the generator produces now (what
//! `cargo run -p berth-xtask -- codegen --check` verifies in CI), and generation is deterministic.
//! Needs python3 with botocore installed (or `BOTOCORE_DIR`) and rustfmt, like the command itself,
//! so a plain `cargo test` skips them; `tests/run.sh` runs them (`cargo test -p berth-xtask --
//! --ignored`).

use std::path::PathBuf;

fn botocore() -> PathBuf {
    std::env::var_os("BOTOCORE_DIR")
        .map_or_else(|| berth_xtask::find_botocore().expect("botocore installed"), PathBuf::from)
}

#[test]
#[ignore = "needs python3 with botocore; tests/run.sh runs it"]
fn committed_output_is_up_to_date_and_deterministic() {
    let root = berth_xtask::workspace_root();
    let dir = botocore();
    let a = berth_xtask::generate(&dir, &root).expect("generates");
    let stale = berth_xtask::stale_files(&root, &a).expect("reads committed files");
    assert!(stale.is_empty(), "run `cargo run -p berth-xtask -- codegen`; stale: {stale:?}");
    let b = berth_xtask::generate(&dir, &root).expect("generates again");
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.path, y.path);
        assert!(x.contents == y.contents, "{} differs between two runs", x.path.display());
    }
}

#[test]
#[ignore = "needs python3 with botocore; tests/run.sh runs it"]
fn output_carries_no_documentation() {
    let root = berth_xtask::workspace_root();
    for f in berth_xtask::generate(&botocore(), &root).expect("generates") {
        assert!(!f.contents.contains("<p>"), "{} contains model HTML documentation", f.path.display());
        assert!(!f.contents.contains("</"), "{} contains HTML", f.path.display());
    }
}
