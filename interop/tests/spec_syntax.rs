//! CI's check of the TLA+ specification without TLC: every `spec/*.tla` file
//! must parse with the tree-sitter TLA+ grammar, and the tables of
//! `spec/README.md` that map the spec to the Rust code must name only
//! actions, helpers and variables that `spec/Raft.tla` really defines (and
//! every action and variable it defines), so neither can rot silently.
//!
//! tree-sitter is an error-tolerant parser: it always yields a tree, marking
//! what it could not parse with `ERROR` nodes and what it had to invent with
//! `MISSING` nodes. A file is accepted only if its tree has neither.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Parser, Tree};

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn parse(source: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_tlaplus::LANGUAGE.into())
        .expect("the tree-sitter-tlaplus grammar's ABI is supported by this tree-sitter");
    parser
        .parse(source, None)
        .expect("parsing without a timeout or cancellation flag always yields a tree")
}

/// Every syntax error of `source`, as `line:column: what` (1-based; the
/// column counts bytes). An `ERROR` node is reported once, not its insides.
fn syntax_errors(source: &str) -> Vec<String> {
    let tree = parse(source);
    let mut errors = Vec::new();
    collect_errors(tree.root_node(), &mut errors);
    errors
}

fn collect_errors(node: Node, errors: &mut Vec<String>) {
    let at = node.start_position();
    let position = format!("{}:{}", at.row + 1, at.column + 1);
    if node.is_error() {
        errors.push(format!("{position}: syntax error (ERROR node)"));
        return;
    }
    if node.is_missing() {
        errors.push(format!("{position}: MISSING {}", node.kind()));
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect_errors(child, errors);
    }
}

/// The `.tla` files of spec/, sorted.
fn spec_files() -> Vec<PathBuf> {
    let dir = spec_dir();
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tla"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_spec_file_parses() {
    let files = spec_files();
    let names: Vec<_> = files
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
        .collect();
    for expected in ["Raft.tla", "MCRaft.tla"] {
        assert!(
            names.iter().any(|name| name == expected),
            "spec/{expected} is missing; found {names:?}"
        );
    }
    let mut errors = Vec::new();
    for path in &files {
        for error in syntax_errors(&read(path)) {
            errors.push(format!(
                "spec/{}:{error}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "TLA+ syntax errors:\n{}",
        errors.join("\n")
    );
}

const VALID: &str = r"---- MODULE Clock ----
EXTENDS Naturals
VARIABLE clock
Init == clock \in {0, 1}
Tick == clock' = 1 - clock
Spec == Init /\ [][Tick]_clock
====
";

#[test]
fn a_valid_module_is_accepted() {
    assert_eq!(syntax_errors(VALID), Vec::<String>::new());
}

#[test]
fn garbage_in_a_definition_is_rejected_at_its_line() {
    let broken = VALID.replace("Tick == clock' = 1 - clock", "Tick == clock' = = ) 1");
    let errors = syntax_errors(&broken);
    assert!(!errors.is_empty(), "a broken definition must be rejected");
    assert!(
        errors.iter().all(|error| error.starts_with("5:")),
        "reported on line 5: {errors:?}"
    );
}

#[test]
fn an_unclosed_parenthesis_is_rejected() {
    let broken = VALID.replace("Tick == clock' = 1 - clock", "Tick == clock' = (1 - clock");
    let errors = syntax_errors(&broken);
    assert!(
        !errors.is_empty(),
        "an unclosed parenthesis must be rejected"
    );
}

#[test]
fn a_module_without_its_closing_line_is_rejected() {
    let broken = VALID.replace("====\n", "");
    assert!(
        !syntax_errors(&broken).is_empty(),
        "a module must end with ===="
    );
}

// --- spec/README.md's tables against Raft.tla ---------------------------------

/// The names Raft.tla defines: operators and declared variables.
struct Definitions {
    operators: BTreeSet<String>,
    variables: BTreeSet<String>,
    /// The definitions `Next` refers to: the spec's actions.
    actions: BTreeSet<String>,
}

fn raft_definitions() -> Definitions {
    let source = read(&spec_dir().join("Raft.tla"));
    let tree = parse(&source);
    let text = |node: Node| {
        node.utf8_text(source.as_bytes())
            .expect("the source is UTF-8")
            .to_owned()
    };
    let mut operators = BTreeSet::new();
    let mut variables = BTreeSet::new();
    let mut next = None;
    visit(tree.root_node(), &mut |node| match node.kind() {
        "operator_definition" => {
            if let Some(name) = node.child_by_field_name("name") {
                if text(name) == "Next" {
                    next = Some(node);
                }
                operators.insert(text(name));
            }
        }
        "variable_declaration" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                if child.kind() == "identifier" {
                    variables.insert(text(child));
                }
            }
        }
        _ => {}
    });
    let next = next.expect("Raft.tla defines Next");
    let mut actions = BTreeSet::new();
    visit(next, &mut |node| {
        if node.kind() == "identifier_ref" && operators.contains(&text(node)) {
            actions.insert(text(node));
        }
    });
    Definitions {
        operators,
        variables,
        actions,
    }
}

fn visit<'tree>(node: Node<'tree>, f: &mut impl FnMut(Node<'tree>)) {
    f(node);
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        visit(child, f);
    }
}

/// The Markdown tables of the README section whose heading is `heading`:
/// tables of rows of cells, header and separator rows left out.
fn tables_in_section(readme: &str, heading: &str) -> Vec<Vec<Vec<String>>> {
    let mut lines = readme.lines().skip_while(|line| line.trim() != heading);
    assert!(
        lines.next().is_some(),
        "spec/README.md has no section {heading:?}"
    );
    let mut tables = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    for line in lines.take_while(|line| !line.starts_with("## ")) {
        if let Some(row) = line.trim().strip_prefix('|') {
            table.push(
                row.trim_end_matches('|')
                    .split('|')
                    .map(|cell| cell.trim().to_owned())
                    .collect(),
            );
        } else if !table.is_empty() {
            tables.push(std::mem::take(&mut table).into_iter().skip(2).collect());
        }
    }
    if !table.is_empty() {
        tables.push(table.into_iter().skip(2).collect());
    }
    tables
}

/// The identifiers quoted in a table cell: `Foo(i)` and `Bar` give Foo, Bar.
fn quoted_names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|quoted| {
            quoted
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn first_column_names(table: &[Vec<String>]) -> BTreeSet<String> {
    table.iter().flat_map(|row| quoted_names(&row[0])).collect()
}

fn readme() -> String {
    read(&spec_dir().join("README.md"))
}

#[test]
fn readme_action_table_is_exactly_the_actions_of_next() {
    let spec = raft_definitions();
    let tables = tables_in_section(&readme(), "## Actions");
    let listed = first_column_names(tables.first().expect("an action table"));
    for name in &listed {
        assert!(
            spec.operators.contains(name),
            "README lists action {name}, which Raft.tla does not define"
        );
    }
    assert_eq!(
        listed, spec.actions,
        "README's action table vs the actions of Next in Raft.tla"
    );
    assert_eq!(
        listed.len(),
        21,
        "nineteen core transitions, DuplicateMessage and DropMessage"
    );
}

#[test]
fn readme_helper_table_names_only_defined_operators() {
    let spec = raft_definitions();
    let tables = tables_in_section(&readme(), "## Actions");
    let helpers = first_column_names(tables.get(1).expect("a table of internal steps"));
    for required in ["UpdateTerm", "BecomeLeader", "AdvanceCommitIndex"] {
        assert!(
            helpers.contains(required),
            "README's helper table lacks {required}"
        );
    }
    for name in &helpers {
        assert!(
            spec.operators.contains(name),
            "README lists helper {name}, which Raft.tla does not define"
        );
    }
}

#[test]
fn readme_variable_table_is_exactly_the_variables_of_raft_tla() {
    let spec = raft_definitions();
    let tables = tables_in_section(&readme(), "## Variables");
    let listed = first_column_names(tables.first().expect("a variable table"));
    assert_eq!(
        listed, spec.variables,
        "README's variable table vs the VARIABLES of Raft.tla"
    );
}

#[test]
fn the_table_check_sees_a_missing_action() {
    // The check above must be able to fail: a table naming an action the
    // spec lacks is caught.
    let spec = raft_definitions();
    let fake = "## Actions\n\n| a | b |\n| - | - |\n| `Timeout(i)` | x |\n| `Elect(i)` | y |\n";
    let listed = first_column_names(&tables_in_section(fake, "## Actions")[0]);
    assert_eq!(
        listed,
        BTreeSet::from(["Elect".to_owned(), "Timeout".to_owned()])
    );
    assert!(!listed.is_subset(&spec.operators));
}

/// The names inside `name == <<a, b, ...>>` in Raft.tla.
fn tuple_definition(name: &str) -> BTreeSet<String> {
    let source = read(&spec_dir().join("Raft.tla"));
    let start = source
        .find(&format!("{name} == <<"))
        .unwrap_or_else(|| panic!("Raft.tla defines {name}"));
    let rest = &source[start + name.len() + " == <<".len()..];
    let end = rest.find(">>").expect("the tuple closes");
    rest[..end]
        .split(',')
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn the_trace_variable_table_is_exactly_the_per_server_variables_of_raft_tla() {
    let spec = raft_definitions();
    let table = raft_trace::vars::per_server::<u8, ()>();
    let names: BTreeSet<String> = table.iter().map(|v| v.name.to_owned()).collect();
    let persistent: BTreeSet<String> = table
        .iter()
        .filter(|v| v.persistent)
        .map(|v| v.name.to_owned())
        .collect();
    let volatile: BTreeSet<String> = names.difference(&persistent).cloned().collect();
    assert_eq!(persistent, tuple_definition("persistentVars"));
    assert_eq!(volatile, tuple_definition("volatileVars"));
    assert!(names.is_subset(&spec.variables));
}

#[test]
fn the_model_action_list_is_exactly_the_server_actions_of_next() {
    let spec = raft_definitions();
    let mut listed: BTreeSet<String> = raft_model::Action::ALL
        .iter()
        .map(|a| a.name().to_owned())
        .collect();
    // The network's own actions, which no server takes.
    for network in ["DuplicateMessage", "DropMessage"] {
        listed.insert(network.to_owned());
    }
    assert_eq!(listed, spec.actions);
}
