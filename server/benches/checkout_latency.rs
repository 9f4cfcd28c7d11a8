//! How long a checkout takes end to end on loopback: `POST /checkout` through the
//! web server, the three verification services and the queue, all in this process
//! on real sockets. A benchmark, not a test: it prints figures and asserts nothing.
//!
//! Run: `cargo bench -p server --bench checkout_latency` (optionally
//! `-- <orders>`, default 500). Results and the machine they came from go in
//! docs/benchmarks.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use services::fraud_detection::FraudConfig;
use support::{seed_order, Stack, StackOptions};

#[tokio::main]
async fn main() {
    let orders: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(500);
    // One buyer and one card place every order: lift the velocity limits.
    let fraud = FraudConfig { velocity_limit: u32::MAX, ..FraudConfig::default() };
    let stack = Stack::start_with(StackOptions { fraud, ..StackOptions::default() }).await;
    let order = seed_order();

    // Warm the connections.
    for _ in 0..20 {
        let (status, body) = stack.checkout(&order).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(orders);
    let started = Instant::now();
    for _ in 0..orders {
        let begin = Instant::now();
        let (status, body) = stack.checkout(&order).await;
        latencies.push(begin.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    let total = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!("checkout latency over {orders} sequential approved orders (loopback, one client)");
    println!("  median {:>8.2?}", at(0.5));
    println!("  p90    {:>8.2?}", at(0.9));
    println!("  p99    {:>8.2?}", at(0.99));
    println!("  max    {:>8.2?}", latencies[latencies.len() - 1]);
    println!("  throughput {:.0} orders/s", orders as f64 / total.as_secs_f64());
}
