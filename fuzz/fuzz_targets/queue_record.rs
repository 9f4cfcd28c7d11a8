//! A record of the queue's file, from any bytes: read as the queue reads one
//! (prost) or refused as corrupt; an order that reads is checked as the queue
//! checks an enqueue, and turned into an execution as the executors' leader turns
//! a delivered order into one. No input may panic.
#![no_main]

use proto::enums::client_card_from_proto;
use proto::order_line::order_lines_from_proto;
use services::order_executor::replica::execution_from;
use services::order_queue::store::read_record;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(order) = read_record("fuzzed", bytes) else { return };
    let _ = client_card_from_proto("QueuedOrder.client_card", order.client_card);
    let _ = order_lines_from_proto("lines", &order.lines);
    let _ = execution_from(order, "lease".to_owned());
});
