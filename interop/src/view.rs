//! `raft-interop view`: a trace as one self-contained HTML page that replays
//! it in the browser (the viewer, `interop/viewer/index.html`, with the
//! trace's lines embedded). The page needs no network and no build step; it
//! can be opened from disk, mailed, or attached to a bug report.
//!
//! The lines are embedded as they were written (a checker's counterexample,
//! or a cluster's node files, which the page orders causally as the
//! validator does); nothing is validated here: a counterexample of a seeded
//! bug is exactly what the correct model refuses, and must still be shown.
//!
//! A failed chaos run's *findings* go into the page beside its traces: the
//! harness writes, next to the run's `traces` directory, one
//! `violation-<key>.json` per key whose history no order fits and one
//! `lost-write-<key>.json` per acknowledged write the final state
//! contradicts, each with the offending slice of the client history. The
//! page draws that slice as a timeline. They are picked up from the run
//! directory when the path given is its `traces` directory, or named with
//! `--history`.

use std::path::PathBuf;

/// The viewer, as committed.
pub const VIEWER: &str = include_str!("../viewer/index.html");

/// Where the trace goes in the page.
const SLOT: &str = r#"<script id="trace" type="application/x-ndjson"></script>"#;

/// Where a chaos run's findings go in the page.
const HISTORY_SLOT: &str = r#"<script id="history" type="application/json"></script>"#;

/// The file-name prefixes of a chaos run's findings, and what each is.
const FINDINGS: [(&str, &str); 2] = [("violation-", "violation"), ("lost-write-", "lost-write")];

/// The page replaying the traces at `paths` (trace directories or files,
/// JSON or compact: each is first rewritten as JSON lines, a directory as
/// one file per node with its segments in order), titled `name`, with the
/// chaos findings found beside them and those named in `history`.
pub fn page_of(paths: &[PathBuf], history: &[PathBuf], name: &str) -> Result<String, String> {
    let findings = findings(paths, history)?;
    page_of_traces(paths, name).map(|page| embed_findings(&page, &findings))
}

/// The page of [`page_of`] without findings.
fn page_of_traces(paths: &[PathBuf], name: &str) -> Result<String, String> {
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

/// The chaos findings for the page, as one JSON array of
/// `{"kind","file","finding"}`: the files named in `history`, then those
/// found beside `paths` (in a directory given, or in the run directory of a
/// `traces` directory given), each once, in name order.
pub fn findings(paths: &[PathBuf], history: &[PathBuf]) -> Result<String, String> {
    let mut files: Vec<PathBuf> = history.to_vec();
    for path in paths.iter().filter(|p| p.is_dir()) {
        let mut dirs = vec![path.clone()];
        if path.file_name().is_some_and(|n| n == "traces")
            && let Some(run) = path.parent()
        {
            dirs.push(if run.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                run.to_path_buf()
            });
        }
        for dir in dirs {
            let entries =
                std::fs::read_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| kind_of(p).is_some())
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for file in files {
        let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if !seen.insert(canonical) {
            continue;
        }
        out.push(finding(&file)?);
    }
    serde_json::to_string(&out).map_err(|err| err.to_string())
}

/// What a finding file is, by its name.
fn kind_of(path: &std::path::Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let (prefix, kind) = FINDINGS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))?;
    (name.len() > prefix.len() + ".json".len() && name.ends_with(".json")).then_some(*kind)
}

/// One finding file, checked to be what the chaos harness writes: an object
/// with the key and a slice of operations.
fn finding(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let refuse = |why: String| {
        format!(
            "{}: not a chaos run's finding ({why}); --history takes the violation-<key>.json \
             and lost-write-<key>.json files of a failed run's directory",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| refuse(format!("not JSON: {err}")))?;
    if !value.get("key").is_some_and(|k| k.is_string()) {
        return Err(refuse("no \"key\" string".to_owned()));
    }
    if !value.get("slice").is_some_and(|s| s.is_array()) {
        return Err(refuse("no \"slice\" of operations".to_owned()));
    }
    let kind = kind_of(path).unwrap_or(if value.get("lost").is_some() {
        "lost-write"
    } else {
        "violation"
    });
    Ok(serde_json::json!({
        "kind": kind,
        "file": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "finding": value,
    }))
}

/// `page` with `findings` (a JSON array) in its history slot.
fn embed_findings(page: &str, findings: &str) -> String {
    assert!(
        page.contains(HISTORY_SLOT),
        "the viewer has its history slot"
    );
    page.replacen(
        HISTORY_SLOT,
        &format!(
            "<script id=\"history\" type=\"application/json\">{}</script>",
            findings.replace("</", r"<\/")
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

    fn op(id: usize, ret: Option<u64>) -> serde_json::Value {
        serde_json::json!({"id": id, "client": 1, "key": "k1", "input": {"put": {"value": "</script>"}},
            "output": {"previous": null}, "invoke": 10 * id, "ret": ret})
    }

    #[test]
    fn a_runs_findings_are_found_beside_its_traces_and_named_ones_are_read() {
        let run = tempfile::tempdir().unwrap();
        let traces = run.path().join("traces");
        std::fs::create_dir(&traces).unwrap();
        let violation = serde_json::json!({"key": "k1", "longest_prefix": [0], "value_after_prefix": null,
            "stuck": [op(1, Some(15))], "slice": [op(0, Some(5)), op(1, Some(15))]});
        std::fs::write(run.path().join("violation-k1.json"), violation.to_string()).unwrap();
        let lost = serde_json::json!({"key": "k2", "final_value": "a", "lost": op(3, Some(35)), "slice": [op(3, Some(35))]});
        let elsewhere = tempfile::tempdir().unwrap();
        let named = elsewhere.path().join("lost-write-k2.json");
        std::fs::write(&named, lost.to_string()).unwrap();
        std::fs::write(run.path().join("report.json"), "{}").unwrap();

        let found: serde_json::Value = serde_json::from_str(
            &findings(std::slice::from_ref(&traces), std::slice::from_ref(&named)).unwrap(),
        )
        .unwrap();
        let kinds: Vec<_> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["kind"].clone(), f["finding"]["key"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (serde_json::json!("lost-write"), serde_json::json!("k2")),
                (serde_json::json!("violation"), serde_json::json!("k1"))
            ]
        );
        // Named twice (found and given): shown once.
        let again = findings(
            std::slice::from_ref(&traces),
            &[run.path().join("violation-k1.json")],
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&again)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A directory that is not a run's traces: nothing looked for beside it.
        assert_eq!(
            findings(&[run.path().join("traces")], &[])
                .unwrap()
                .matches("\"kind\"")
                .count(),
            1
        );
        let other = run.path().join("nodes");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(findings(&[other], &[]).unwrap(), "[]");

        // In the page, a value saying "</script>" cannot end the slot.
        let page = embed_findings(VIEWER, &findings(&[traces], &[]).unwrap());
        let start = page.find(r#"<script id="history""#).unwrap();
        let end = page[start..].find("</script>").unwrap() + start;
        let json = &page[page[start..].find('>').unwrap() + start + 1..end];
        let parsed: serde_json::Value = serde_json::from_str(json).expect("still JSON");
        assert_eq!(
            parsed[0]["finding"]["slice"][0]["input"]["put"]["value"],
            "</script>"
        );
    }

    #[test]
    fn a_file_that_is_not_a_finding_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.json");
        std::fs::write(&notes, "not json").unwrap();
        let err = findings(&[], std::slice::from_ref(&notes)).unwrap_err();
        assert!(
            err.contains("notes.json: not a chaos run's finding (not JSON"),
            "{err}"
        );
        std::fs::write(&notes, r#"{"key": "k"}"#).unwrap();
        let err = findings(&[], &[notes]).unwrap_err();
        assert!(
            err.contains("no \"slice\" of operations") && err.contains("--history takes"),
            "{err}"
        );
        let err = findings(&[], &[dir.path().join("missing.json")]).unwrap_err();
        assert!(err.contains("missing.json: No such file"), "{err}");
    }
}
