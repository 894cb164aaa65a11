//! The node's command line (issue 5 builds it). Until then it says so.
fn main() {
    eprintln!("raft-node: not built yet (see issue 5)");
    std::process::exit(2);
}
