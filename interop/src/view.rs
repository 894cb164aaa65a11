//! `raft-interop view`: a trace as one self-contained HTML page that replays
//! it in the browser (the viewer, `interop/viewer/index.html`, with the
//! trace's lines embedded). The page needs no network and no build step; it
//! can be opened from disk, mailed, or attached to a bug report.
//!
//! The lines are embedded as they were written (a checker's counterexample,
//! or a cluster's node files, which the page orders causally as the
//! validator does); nothing is validated here: a counterexample of a seeded
//! bug is exactly what the correct model refuses, and must still be shown.

use std::path::PathBuf;

/// The viewer, as committed.
pub const VIEWER: &str = include_str!("../viewer/index.html");

/// Where the trace goes in the page.
const SLOT: &str = r#"<script id="trace" type="application/x-ndjson"></script>"#;

/// The page replaying the traces at `paths` (trace directories or files,
/// JSON or compact: each is first rewritten as JSON lines, a directory as
/// one file per node with its segments in order), titled `name`.
pub fn page_of(paths: &[PathBuf], name: &str) -> Result<String, String> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = std::env::temp_dir().join(format!("raft-view-{}-{call}", std::process::id()));
    let mut files = Vec::new();
    let mut result = Ok(());
    for (k, path) in paths.iter().enumerate() {
        if !path.exists() {
            result = Err(format!("{}: no such file or directory", path.display()));
            break;
        }
        match crate::convert(path, &scratch.join(k.to_string()), crate::Format::Json) {
            Ok(written) => files.extend(written),
            Err(failure) => {
                result = Err(failure.to_string());
                break;
            }
        }
    }
    let page = result.and_then(|()| page(&files, name).map_err(|err| err.to_string()));
    let _ = std::fs::remove_dir_all(&scratch);
    page
}

/// The page replaying the lines of `files` (JSON lines), titled `name`.
pub fn page(files: &[PathBuf], name: &str) -> std::io::Result<String> {
    let mut lines = String::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|err| std::io::Error::new(err.kind(), format!("{}: {err}", file.display())))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines.push_str(line);
            lines.push('\n');
        }
    }
    Ok(embed(&lines, name))
}

/// `VIEWER` with `lines` in its trace slot. "</" never ends the script
/// element early: in JSON it can only occur inside a string, where "<\/"
/// means the same.
fn embed(lines: &str, name: &str) -> String {
    assert!(VIEWER.contains(SLOT), "the viewer has its trace slot");
    let safe = lines.replace("</", r"<\/");
    let name = name
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    VIEWER.replacen(
        SLOT,
        &format!(
            "<script id=\"trace\" type=\"application/x-ndjson\" data-name=\"{name}\">\n{safe}</script>"
        ),
        1,
    )
}

/// A name for the page: the single file's, or the directory's.
pub fn title(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The default output next to the first input: `<stem>.html`.
pub fn default_out(paths: &[PathBuf]) -> PathBuf {
    let first = &paths[0];
    if first.is_dir() {
        first.join("view.html")
    } else {
        first.with_extension("html")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_says_end_of_script_cannot_end_the_script() {
        let page = embed("{\"value\":\"</script><b>\"}\n", "t<1>");
        let start = page.find("data-name=\"t&lt;1>\">").expect("slot filled");
        let end = page[start..].find("</script>").unwrap() + start;
        assert!(
            page[start..end].contains(r#"<\/script><b>"#),
            "{}",
            &page[start..end]
        );
    }
}
