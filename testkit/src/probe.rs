//! What tests and benches ask the execution side over gRPC, by URL, so that
//! in-process groups ([`super::Group`]) and real processes ([`super::processes`])
//! are checked the same way. Each probe asks once and answers `None` when there is
//! no answer yet; [`eventually`] repeats one until it answers.

use std::future::Future;
use std::time::Duration;

use proto::v1 as pb;
use tokio::time::Instant;

use platform::card_token::FingerprintKey;

/// How long [`eventually`] keeps asking before it panics.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Asks `probe` every `every` until it answers, for at most [`PATIENCE`]; panics
/// with `what` (what was awaited) if it never does.
pub async fn eventually<T, Fut>(what: impl std::fmt::Display, every: Duration, probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, every, PATIENCE, probe).await
}

/// [`eventually`], for at most `patience`.
pub async fn eventually_within<T, Fut>(
    what: impl std::fmt::Display,
    every: Duration,
    patience: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let give_up = Instant::now() + patience;
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(Instant::now() < give_up, "{what}: not within {patience:?}");
        tokio::time::sleep(every).await;
    }
}

/// An order for `lines` (book id, copies) at a nominal 10.99 a copy, paid with
/// `card` (expiring in a year), at priority `client_card`.
pub fn queued_order(
    key: &FingerprintKey,
    order_id: &str,
    card: &str,
    lines: &[(&str, u32)],
    client_card: domain::ClientCard,
) -> pb::QueuedOrder {
    let number = domain::CardNumber::parse(card).expect("a valid card number");
    let now = platform::clock::this_month();
    let expiry = domain::Expiry::parse(&now.plus_months(12).to_string(), now).expect("a valid expiry");
    pb::QueuedOrder {
        order_id: order_id.to_owned(),
        client_card: pb::ClientCard::from(client_card).into(),
        lines: lines
            .iter()
            .map(|(id, quantity)| pb::OrderLine { book_id: (*id).into(), quantity: *quantity })
            .collect(),
        total_cents: lines.iter().map(|(_, quantity)| u64::from(*quantity) * 1099).sum(),
        card: Some(key.token(&number, expiry)),
        ..Default::default()
    }
}

/// Enqueues `order` at the queue at `url`; `None` if the queue did not take it.
pub async fn enqueue(url: &str, order: &pb::QueuedOrder) -> Option<()> {
    let mut queue = pb::order_queue_client::OrderQueueClient::connect(url.to_owned()).await.ok()?;
    queue.enqueue(pb::EnqueueRequest { order: Some(order.clone()) }).await.ok().map(drop)
}

/// openraft's metrics of the replica at `url`.
pub async fn raft_metrics(url: &str) -> Option<serde_json::Value> {
    let mut client = pb::raft_client::RaftClient::connect(url.to_owned()).await.ok()?;
    let answer = client.metrics(pb::RaftMetricsRequest {}).await.ok()?;
    serde_json::from_slice(&answer.into_inner().payload).ok()
}

/// The first of `replicas` (id, URL) that reports itself leader.
pub async fn leader(replicas: impl IntoIterator<Item = (u64, String)>) -> Option<u64> {
    for (id, url) in replicas {
        if raft_metrics(&url).await.is_some_and(|metrics| metrics["state"] == "Leader") {
            return Some(id);
        }
    }
    None
}

/// The status of `order_id` from the first executor at `executors` that reports
/// it committed or aborted.
pub async fn final_status(executors: &[String], order_id: &str) -> Option<pb::OrderStatusResponse> {
    for url in executors {
        let Ok(mut client) = pb::order_executor_client::OrderExecutorClient::connect(url.clone()).await else {
            continue;
        };
        let Ok(answer) = client.order_status(pb::OrderStatusRequest { order_id: order_id.into() }).await else {
            continue;
        };
        let answer = answer.into_inner();
        if matches!(answer.status(), pb::OrderState::Committed | pb::OrderState::Aborted) {
            return Some(answer);
        }
    }
    None
}

/// The payment ledger's record of `order_id`, from payment at `url`.
pub async fn payment(url: &str, order_id: &str) -> Option<pb::PaymentRecord> {
    let mut client = pb::payment_client::PaymentClient::connect(url.to_owned()).await.ok()?;
    client.get(pb::PaymentDecision { order_id: order_id.into() }).await.ok().map(tonic::Response::into_inner)
}

/// Copies of `book_id` available, if every books_db replica at `replicas` answers
/// and they all have applied the same.
pub async fn agreed_stock(replicas: &[String], book_id: &str) -> Option<u32> {
    let mut seen = Vec::new();
    for url in replicas {
        let mut client = pb::books_db_client::BooksDbClient::connect(url.clone()).await.ok()?;
        let request = pb::StockRequest { book_ids: vec![book_id.into()], local: true };
        seen.push(client.stock(request).await.ok()?.into_inner().books.first()?.available);
    }
    let first = *seen.first()?;
    seen.iter().all(|copies| *copies == first).then_some(first)
}
