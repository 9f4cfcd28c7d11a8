//! A Raft log entry of either group, from any bytes: read as the log store and
//! the Raft network read one (serde JSON into openraft's entry of that group) or
//! refused, and every command it carries applied to a fresh state machine. A
//! command that reads must apply without a panic: a panic in `apply` stops the
//! replica's Raft node.
#![no_main]

use consensus::{Entry, StateMachine};
use openraft::EntryPayload;
use services::books_db::state::BooksState;
use services::order_executor::state::ExecutorState;

fn apply_all<M: StateMachine>(bytes: &[u8]) {
    let Ok(entry) = serde_json::from_slice::<Entry<M>>(bytes) else { return };
    if let EntryPayload::Normal(commands) = entry.payload {
        let mut state = M::default();
        for command in &commands.0 {
            let _ = state.apply(command);
        }
        // The state goes into snapshots: it must write and read back.
        let snapshot = serde_json::to_vec(&state).expect("a state serializes");
        serde_json::from_slice::<M>(&snapshot).expect("a snapshot reads back");
    }
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    apply_all::<ExecutorState>(bytes);
    apply_all::<BooksState>(bytes);
});
