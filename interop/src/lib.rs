//! # raft-interop: replay of Raft traces through the model, export to TLA+ tools
//!
//! The format itself, `raft-trace/5`, and its writer live in the crate
//! raft-trace (re-exported here as [`format`], [`writer`] and [`vars`]), which
//! the node and the checker write through; this crate reads it:
//!
//! - [`validate`]: replays every node's events through raft-model, merged in
//!   a causal order, and names the first event the model does not allow. The
//!   node's traces and the checker's counterexamples are read by the same
//!   path ([`read_streams`]);
//! - [`itf`]: a validated run as ITF JSON (Apalache / TLA+ trace tooling);
//! - [`tla`]: a validated run as input for spec/TraceRaft.tla under TLC.
//!
//! The command-line tool `raft-interop` (src/main.rs) drives them.

pub mod follow;
pub mod itf;
pub mod tla;
pub mod validate;
pub mod view;

use std::path::{Path, PathBuf};

pub use raft_trace::{Format, Line, SCHEMA, TraceWriter};
pub use raft_trace::{format, vars, writer};
pub use validate::{
    Failure, NetworkStep, Options, RunStep, Stream, Validated, Validator, validate, validate_opts,
    validate_with,
};

/// Reads the traces at `paths`: trace files (a node's segment, or a
/// checker's counterexample holding every server's lines), read whole, and
/// directories of node traces (one cluster: every node's segments,
/// `node-<id>.<seq>.jsonl[.zst]`, see [`raft_trace::segments`]), read lazily
/// segment after segment. Either form, compact or JSON, is detected from a
/// file's first bytes. One stream per node.
pub fn read_streams(paths: &[PathBuf]) -> Result<Vec<Stream>, Failure> {
    let mut streams = Vec::new();
    for path in paths {
        if path.is_dir() {
            streams.extend(dir_streams(path, false)?);
        } else {
            streams.extend(Stream::read(path)?);
        }
    }
    Ok(streams)
}

/// One lazy stream per node whose segments are in `dir`, each from its
/// first segment.
pub fn dir_streams(dir: &Path, follow: bool) -> Result<Vec<Stream>, Failure> {
    let segments = raft_trace::segments::list(dir).map_err(|err| Failure::io(dir, &err))?;
    if segments.is_empty() && !follow {
        return Err(Failure::io(
            dir,
            &std::io::Error::other(
                "no node-*.jsonl or node-*.jsonl.zst trace files in this directory",
            ),
        ));
    }
    let mut streams = Vec::new();
    let mut last = None;
    for segment in &segments {
        if last == Some(segment.node) {
            continue;
        }
        last = Some(segment.node);
        streams.push(Stream::segments(dir, segment.node, segment, follow)?);
    }
    Ok(streams)
}

/// Writes the traces at `input` (a trace directory or file, either form)
/// in `format` into `out`: a directory gives one file per node,
/// `node-<id>.000001.<ext>`, its segments' lines in order; a file gives one
/// file of the same name in the new form. Returns the files written.
///
/// JSON is for people and tools that read one line at a time, so every
/// event is written with its full state: an event a compact trace recorded
/// as a delta ([`raft_trace::StateDelta`]) is resolved against the node's
/// previous events first. The compact form keeps the lines as they are.
pub fn convert(input: &Path, out: &Path, format: Format) -> Result<Vec<PathBuf>, Failure> {
    use std::io::Write;
    std::fs::create_dir_all(out).map_err(|err| Failure::io(out, &err))?;
    // (output file name, the lines' text, read as it goes)
    let mut written = Vec::new();
    let mut emit = |name: String, lines: &mut LineSource| {
        let path = out.join(name);
        let file = std::fs::File::create(&path).map_err(|err| Failure::io(&path, &err))?;
        let mut file = std::io::BufWriter::new(file);
        let mut compressor = match format {
            Format::Compact => {
                Some(raft_trace::compact::Compressor::new().map_err(|e| Failure::io(&path, &e))?)
            }
            Format::Json => None,
        };
        let mut buffer = Vec::with_capacity(1 << 20);
        let mut error = None;
        let mut states = raft_trace::States::default();
        let mut unreadable = None;
        let mut number = 0usize;
        lines(&mut |line: &str| {
            number += 1;
            let full = match format {
                Format::Json => match full_line(line, &mut states) {
                    Ok(full) => full,
                    Err(err) => {
                        unreadable
                            .get_or_insert_with(|| (number, err.to_string(), line.to_string()));
                        std::borrow::Cow::Borrowed(line)
                    }
                },
                Format::Compact => std::borrow::Cow::Borrowed(line),
            };
            buffer.extend_from_slice(full.as_bytes());
            buffer.push(b'\n');
            if buffer.len() >= 1 << 20 && error.is_none() {
                error = flush(&mut file, &mut compressor, &mut buffer).err();
            }
        })?;
        if let Some((line, problem, raw)) = unreadable {
            return Err(Failure {
                source: path.display().to_string(),
                line,
                node: None,
                action: None,
                problem: format!("cannot write this line with its full state: {problem}"),
                details: vec![format!("line: {}", validate::abbreviate(&raw))],
            });
        }
        let mut result = flush(&mut file, &mut compressor, &mut buffer);
        if let (Ok(()), Some(compressor)) = (&result, compressor) {
            result = compressor
                .finish()
                .and_then(|last| file.write_all(&last))
                .and_then(|()| file.flush());
        } else if result.is_ok() {
            result = file.flush();
        }
        if let Some(err) = error.or(result.err()) {
            return Err(Failure::io(&path, &err));
        }
        written.push(path);
        Ok(())
    };
    if input.is_dir() {
        let segments = raft_trace::segments::list(input).map_err(|err| Failure::io(input, &err))?;
        let mut nodes: Vec<_> = segments.iter().map(|s| s.node).collect();
        nodes.dedup();
        for node in nodes {
            let first = segments.iter().find(|s| s.node == node).expect("listed");
            let mut cursor = raft_trace::segments::Cursor::new(input, node, first, false)
                .map_err(|err| Failure::io(&first.path, &err))?;
            emit(
                raft_trace::segments::file_name(node, 1, format),
                &mut |sink| loop {
                    match cursor.next_line() {
                        Ok(raft_trace::segments::Next::Line(at)) => sink(at.text),
                        Ok(_) => return Ok(()),
                        Err(err) => return Err(Failure::segment(node, err)),
                    }
                },
            )?;
        }
    } else {
        let bytes = std::fs::read(input).map_err(|err| Failure::io(input, &err))?;
        let text =
            raft_trace::compact::decode_all(&bytes).map_err(|err| Failure::io(input, &err))?;
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "trace".to_string());
        let stem = name
            .strip_suffix(".zst")
            .unwrap_or(&name)
            .strip_suffix(".jsonl")
            .unwrap_or(&name)
            .to_string();
        emit(format!("{stem}.{}", format.extension()), &mut |sink| {
            for line in String::from_utf8_lossy(&text).lines() {
                sink(line);
            }
            Ok(())
        })?;
    }
    Ok(written)
}

/// `line` with its state whole: an event recorded as a delta is resolved
/// (against `states`, the node's earlier events) and written again; every
/// other line is kept as it is.
fn full_line<'a>(
    line: &'a str,
    states: &mut raft_trace::States,
) -> Result<std::borrow::Cow<'a, str>, serde_json::Error> {
    if line.trim().is_empty() {
        return Ok(std::borrow::Cow::Borrowed(line));
    }
    let parsed = validate::parse_line(line, states)?;
    match parsed {
        Line::Event(event) if line.contains(r#""delta":{"#) => {
            serde_json::to_string(&Line::Event(event)).map(std::borrow::Cow::Owned)
        }
        _ => Ok(std::borrow::Cow::Borrowed(line)),
    }
}

/// Feeds every line of a trace to the sink it is given.
type LineSource<'a> = dyn FnMut(&mut dyn FnMut(&str)) -> Result<(), Failure> + 'a;

fn flush(
    file: &mut impl std::io::Write,
    compressor: &mut Option<raft_trace::compact::Compressor>,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    if buffer.is_empty() {
        return Ok(());
    }
    match compressor {
        Some(compressor) => file.write_all(compressor.batch(buffer)?)?,
        None => file.write_all(buffer)?,
    }
    buffer.clear();
    Ok(())
}
