//! Prints the package inventory of layer files, merged bottom-up in the order given, with the
//! time each layer took: `cargo run --release -p berth-scanner --example inventory -- L1 [L2 ...]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut layers = Vec::new();
    for path in std::env::args().skip(1) {
        let file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        let started = Instant::now();
        let inv = berth_scanner::scan_layer(
            std::io::BufReader::with_capacity(1 << 20, file),
            &berth_scanner::Limits::default(),
        )?;
        let secs = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let mbps = size as f64 / 1e6 / secs;
        eprintln!(
            "{path}: {size} bytes in {secs:.3} s ({mbps:.1} MB/s), {} sources, {} skipped, {} unsupported",
            inv.sources.len(),
            inv.skipped.len(),
            inv.unsupported.len()
        );
        for (p, why) in inv.skipped.iter().chain(inv.unsupported.iter()) {
            eprintln!("  {p}: {why}");
        }
        layers.push(inv);
    }
    let merged = berth_scanner::merge(&layers);
    println!("{}", serde_json::to_string_pretty(&merged)?);
    Ok(())
}
