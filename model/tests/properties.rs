//! Safety properties over random runs of 3- and 5-server clusters
//! (tests/common/sim.rs): elections, client requests, lost, duplicated and
//! reordered messages, crashes and compactions, up to 200 operations a run.
//!
//! Each property runs 1,000 cases by default (`QUICKCHECK_TESTS=N` for more);
//! a failure is shrunk to a minimal sequence of operations.

mod common;

use common::observer::Property;
use common::sim::{ParallelScenario, PipelinedScenario, Scenario, cases, holds, run};
use quickcheck::{QuickCheck, TestResult};

fn check(property: fn(Scenario) -> TestResult) {
    QuickCheck::new()
        .tests(cases())
        .max_tests(cases())
        .quickcheck(property);
}

#[test]
fn at_most_one_leader_per_term() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::ElectionSafety)
    }
    check(property);
}

#[test]
fn committed_prefixes_never_diverge() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::StateMachineSafety)
    }
    check(property);
}

#[test]
fn a_leader_log_only_grows_while_it_leads_its_term() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::LeaderAppendOnly)
    }
    check(property);
}

#[test]
fn logs_with_a_common_entry_agree_up_to_it() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::LogMatching)
    }
    check(property);
}

#[test]
fn commit_index_never_goes_back_without_a_restart() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::CommitMonotonic)
    }
    check(property);
}

#[test]
fn persist_effects_make_everything_durable_before_messages_leave() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::Durability)
    }
    check(property);
}

#[test]
fn effects_hand_the_driver_every_committed_entry_once_in_order() {
    fn property(scenario: Scenario) -> TestResult {
        holds(&scenario, Property::Applied)
    }
    check(property);
}

/// Every property over one run, the first violation reported with the
/// operation it happened at.
fn every_property(scenario: &Scenario) -> TestResult {
    match run(scenario, &[], &Property::ALL).violation {
        None => TestResult::passed(),
        Some((violation, step)) => TestResult::error(format!("at operation {step}: {violation}")),
    }
}

fn check_scenarios<S: quickcheck::Arbitrary + std::fmt::Debug>(property: fn(S) -> TestResult) {
    QuickCheck::new()
        .tests(cases())
        .max_tests(cases())
        .quickcheck(property);
}

/// Pipelined replication: leaders send each peer its next entries before
/// the previous ones are acknowledged, on a network that reorders, loses
/// and duplicates. Every property holds, the durability contract included.
#[test]
fn every_property_holds_with_pipelined_replication() {
    fn property(scenario: PipelinedScenario) -> TestResult {
        every_property(&scenario.0)
    }
    check_scenarios(property as fn(PipelinedScenario) -> TestResult);
}

/// Leaders writing their own appends in parallel with replication
/// (dissertation §10.2.1): every property, the durability contract
/// included (the disk, fed by `persist` effects and completed parallel
/// writes alone, holds what the core says is durable), and a crash that
/// loses a leader's unwritten entries breaks none of them.
#[test]
fn every_property_holds_with_parallel_writes() {
    fn property(scenario: ParallelScenario) -> TestResult {
        every_property(&scenario.0)
    }
    check_scenarios(property as fn(ParallelScenario) -> TestResult);
}
