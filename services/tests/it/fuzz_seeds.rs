//! The fuzz targets' seed inputs (`fuzz/corpus/`) are what the shop writes: each
//! reads as the file or message it stands for, so fuzzing starts from real
//! entries and records, and a change of format that leaves them behind fails here.

use std::path::{Path, PathBuf};

use consensus::Entry;
use openraft::EntryPayload;
use services::books_db::state::BooksState;
use services::order_executor::state::ExecutorState;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn commands<M: consensus::StateMachine>(bytes: &[u8]) -> Vec<M::Command> {
    match serde_json::from_slice::<Entry<M>>(bytes).expect("an entry").payload {
        EntryPayload::Normal(commands) => commands.0,
        other => panic!("not commands: {other:?}"),
    }
}

#[test]
fn the_raft_entry_seeds_are_entries_of_each_group() {
    let executor = commands::<ExecutorState>(&seed("raft_entry", "executor_batch.json"));
    let mut state = ExecutorState::default();
    executor.iter().for_each(|command| drop(state.apply(command)));
    assert_eq!(executor.len(), 3);
    assert_eq!(state.in_flight().count(), 0, "started, decided and completed");

    let books = commands::<BooksState>(&seed("raft_entry", "books_batch.json"));
    let mut state = BooksState::default();
    books.iter().for_each(|command| drop(state.apply(command)));
    assert_eq!(books.len(), 5);
    assert_eq!(state.stock("20").map(|stock| (stock.available, stock.sold)), Some((1, 2)));

    let blank = serde_json::from_slice::<Entry<BooksState>>(&seed("raft_entry", "blank.json")).expect("an entry");
    assert!(matches!(blank.payload, EntryPayload::Blank));
}

#[test]
fn the_queue_record_seed_is_a_stored_order() {
    let order = services::order_queue::store::read_record("seed", &seed("queue_record", "premium_order")).unwrap();
    assert_eq!(order.client_card(), proto::v1::ClientCard::Premium);
    let execution = services::order_executor::replica::execution_from(order, "lease".to_owned());
    assert_eq!(execution.lines.len(), 2, "{execution:?}");
}

#[test]
fn the_checkout_body_seeds_are_checkouts() {
    for name in ["seed_order.json", "refused.json"] {
        let request: domain::CheckoutRequest = serde_json::from_slice(&seed("checkout_body", name)).expect(name);
        assert!(!request.items.is_empty(), "{name}");
    }
}
