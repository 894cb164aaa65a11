//! What the compact form's compression costs the node, per zstd level:
//! compresses a trace's JSON lines batch by batch exactly as the writer
//! does (one stream, a block ended per batch) and prints the CPU time per
//! batch and per line, and the bytes per line, for each level.
//!
//!     zstdcat node-1.000001.jsonl.zst > lines.jsonl
//!     cargo run --release -p raft-trace --example compress_cost -- lines.jsonl 5
//!
//! (5: lines per batch, what `raft-lab bench --trace` reports at 64 clients.)

use std::io::Write;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: compress_cost LINES.jsonl [LINES_PER_BATCH]");
    let per_batch: usize = args.next().map_or(5, |n| n.parse().expect("a number"));
    let text = std::fs::read_to_string(&path)?;
    let lines: Vec<&str> = text.lines().collect();
    let batches: Vec<Vec<u8>> = lines
        .chunks(per_batch)
        .map(|chunk| {
            chunk
                .iter()
                .flat_map(|l| l.bytes().chain([b'\n']))
                .collect()
        })
        .collect();
    println!(
        "{} lines, {} bytes, {} batches of {per_batch}",
        lines.len(),
        text.len(),
        batches.len()
    );
    // Between two batches a node does everything else: evicting the caches
    // between batches (as `--cold` does) is nearer to what it pays.
    let cold = std::env::var_os("COLD").is_some();
    let mut scratch = vec![0u8; if cold { 8 << 20 } else { 0 }];
    println!(
        "level  µs/batch  µs/line  bytes/line  ratio{}",
        if cold { "  (cold caches)" } else { "" }
    );
    for (level, hash_log) in [
        (-5, 0),
        (-1, 0),
        (1, 0),
        (1, 10),
        (1, 11),
        (1, 12),
        (1, 13),
        (1, 14),
        (2, 0),
        (3, 0),
    ] {
        // Best of three passes: the figure is the work, not the machine's noise.
        let mut best = f64::MAX;
        let mut out_bytes = 0;
        for _ in 0..3 {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level)?;
            if hash_log > 0 {
                encoder.set_parameter(zstd::stream::raw::CParameter::HashLog(hash_log))?;
                encoder.set_parameter(zstd::stream::raw::CParameter::WindowLog(hash_log + 4))?;
            }
            let mut written = 0usize;
            let mut elapsed = 0.0;
            for batch in &batches {
                for (i, byte) in scratch.iter_mut().enumerate().step_by(64) {
                    *byte = byte.wrapping_add(i as u8);
                }
                let started = Instant::now();
                encoder.write_all(batch)?;
                encoder.flush()?;
                written += std::mem::take(encoder.get_mut()).len();
                elapsed += started.elapsed().as_secs_f64();
            }
            best = best.min(elapsed);
            out_bytes = written;
        }
        println!(
            "{level:>3}/{hash_log:<2} {:>8.2}  {:>7.2}  {:>10.1}  {:>5.1}",
            best * 1e6 / batches.len() as f64,
            best * 1e6 / lines.len() as f64,
            out_bytes as f64 / lines.len() as f64,
            text.len() as f64 / out_bytes as f64
        );
    }
    std::hint::black_box(&scratch);
    Ok(())
}
