//! The model checker's command line (issue 4 builds it). Until then it says so.
fn main() {
    eprintln!("raft-checker: not built yet (see issue 4)");
    std::process::exit(2);
}
