//! Where an order is, and how the replicated groups are doing, for `GET
//! /orders/{id}`, `GET /api/cluster` and the page's server functions.
//!
//! An order's status comes from the executors (every replica keeps the group's
//! record; the most advanced answer wins, since a follower may lag), and, while
//! the executors have not taken it yet, from the queue. Cluster status asks every
//! replica for its Raft metrics; a replica that does not answer is shown as such.

use std::time::Duration;

use domain::journey::{Decision, Execution, Journey, Queued};
use domain::{ClusterStatus, OrderState, OrderStatus, QueueDepth, ReplicaStatus, Role};
use futures::future::join_all;
use platform::grpc::request;
use platform::telemetry::context;
use proto::enums::{client_card_from_proto, order_state_from_proto};
use proto::journey;
use proto::v1 as pb;
use proto::v1::order_executor_client::OrderExecutorClient;
use proto::v1::order_queue_client::OrderQueueClient;
use proto::v1::raft_client::RaftClient;
use tonic::transport::Channel;

use crate::config::ServiceUrls;

struct Replica {
    url: String,
    channel: Channel,
}

/// What the shop knows of an order id.
#[derive(Debug)]
pub enum Lookup {
    Found(Box<OrderStatus>),
    /// No such order. The executors forget orders finished before
    /// `archived_before_ms` (ms since the epoch; 0: nothing forgotten yet), so the
    /// id may be one of those.
    Unknown {
        archived_before_ms: u64,
    },
}

impl Lookup {
    /// The shopper's words for an unknown order.
    pub fn unknown_message(order_id: &str, archived_before_ms: u64, now_ms: u64) -> String {
        if archived_before_ms == 0 {
            return format!("There is no order {order_id}.");
        }
        let kept = Duration::from_millis(now_ms.saturating_sub(archived_before_ms));
        format!(
            "There is no order {order_id}. Orders are kept for {} after they finish and then archived: \
             if this one finished before that, it is archived.",
            approximately(kept)
        )
    }
}

/// "7 days", "3 hours", "2 minutes", "45 seconds": the largest unit that fits.
fn approximately(span: Duration) -> String {
    let seconds = span.as_secs();
    let (count, unit) = match seconds {
        86_400.. => (seconds / 86_400, "day"),
        3_600.. => (seconds / 3_600, "hour"),
        60.. => (seconds / 60, "minute"),
        _ => (seconds, "second"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

pub struct StatusReader {
    executors: Vec<Replica>,
    books_db: Vec<Replica>,
    queue: Channel,
    deadline: Duration,
}

fn replicas(urls: &[String], deadline: Duration) -> Result<Vec<Replica>, tonic::transport::Error> {
    urls.iter()
        .map(|url| platform::grpc::channel(url, deadline).map(|channel| Replica { url: url.clone(), channel }))
        .collect()
}

/// The answer within the deadline, or none (a replica that does not answer in time
/// is shown as such).
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Option<T> {
    platform::grpc::within(deadline, call).await.ok()
}

fn rank(state: OrderState) -> u8 {
    match state {
        OrderState::Queued => 0,
        OrderState::Executing => 1,
        OrderState::Committed | OrderState::Aborted => 2,
    }
}

/// The journey of an order the executors know, from one replica's record.
fn executed_journey(status: OrderState, answer: &pb::OrderStatusResponse) -> Journey {
    let started = answer.started.as_ref().map(journey::stamp_from_proto);
    let decided = answer.decided.as_ref().map(journey::stamp_from_proto);
    let decision = decided.map(|by| {
        let commit = match status {
            OrderState::Committed => true,
            OrderState::Aborted => false,
            // Decided, not yet complete: the record's reason tells an abort.
            OrderState::Queued | OrderState::Executing => answer.reason.is_empty(),
        };
        Decision { commit, by }
    });
    Journey {
        checkout: journey::checkout_events_from_proto(&answer.checkout_events),
        queued: priority(answer.client_card).filter(|_| answer.accepted_at_unix_ms > 0).map(|priority| Queued {
            priority,
            accepted_at_ms: answer.accepted_at_unix_ms,
            position: None,
        }),
        execution: Some(Execution {
            started,
            votes: answer.votes.iter().map(journey::vote_from_proto).collect(),
            decision,
            completed_at_ms: Some(answer.completed_at_unix_ms).filter(|at| *at > 0),
        }),
    }
}

/// An order's priority as its journey shows it; `None` (the journey shows no
/// queue part) when it cannot be read.
fn priority(client_card: i32) -> Option<String> {
    client_card_from_proto("client_card", client_card).ok().map(|card| card.as_str().to_owned())
}

/// The journey of an order still on the queue.
fn queued_journey(answer: &pb::LookupResponse) -> Journey {
    Journey {
        checkout: journey::checkout_events_from_proto(&answer.checkout_events),
        queued: priority(answer.client_card).map(|priority| Queued {
            priority,
            accepted_at_ms: answer.accepted_at_unix_ms,
            position: Some(answer.position).filter(|position| *position > 0),
        }),
        execution: None,
    }
}

impl StatusReader {
    pub fn new(urls: &ServiceUrls, deadline: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            executors: replicas(&urls.order_executors, deadline)?,
            books_db: replicas(&urls.books_db, deadline)?,
            queue: platform::grpc::channel(&urls.order_queue, deadline)?,
            deadline,
        })
    }

    /// `Ok(None)` when neither the executors nor the queue know the order.
    pub async fn order_status(&self, order_id: &str) -> Result<Option<OrderStatus>, String> {
        Ok(match self.look_up(order_id).await? {
            Lookup::Found(status) => Some(*status),
            Lookup::Unknown { .. } => None,
        })
    }

    /// What the shop knows of `order_id`: its status, or that it knows no such
    /// order and since when finished orders are forgotten.
    pub async fn look_up(&self, order_id: &str) -> Result<Lookup, String> {
        // Nobody would know it: spare the replicas and the queue the question.
        if !domain::order::is_order_id(order_id) {
            return Ok(Lookup::Unknown { archived_before_ms: 0 });
        }
        let asks = self.executors.iter().map(|replica| {
            let mut client = OrderExecutorClient::new(replica.channel.clone());
            let request = request(pb::OrderStatusRequest { order_id: order_id.to_owned() }, self.deadline);
            async move { within(self.deadline, client.order_status(request)).await }
        });
        let answers: Vec<Option<pb::OrderStatusResponse>> = join_all(asks).await;
        let executors_answered = answers.iter().any(Option::is_some);
        let archived_before_ms =
            answers.iter().flatten().map(|answer| answer.archived_before_unix_ms).max().unwrap_or(0);
        let best = answers
            .into_iter()
            .flatten()
            .filter(|answer| answer.known)
            // An answer whose status this version cannot read counts as no answer.
            .filter_map(|answer| {
                order_state_from_proto("OrderStatusResponse.status", answer.status).ok().map(|state| (state, answer))
            })
            .max_by_key(|(state, answer)| (rank(*state), answer.completed_at_unix_ms, answer.votes.len()));
        if let Some((status, answer)) = best {
            let reason = Some(answer.reason.clone()).filter(|reason| !reason.is_empty());
            let journey = Some(executed_journey(status, &answer));
            let trace_id = context::trace_id_in(&answer.trace_context);
            return Ok(Lookup::Found(Box::new(OrderStatus {
                order_id: order_id.to_owned(),
                status,
                reason,
                journey,
                trace_id,
            })));
        }
        let mut queue = OrderQueueClient::new(self.queue.clone());
        let lookup = request(pb::LookupRequest { order_id: order_id.to_owned() }, self.deadline);
        let lookup = within(self.deadline, queue.lookup(lookup)).await;
        match lookup.as_ref().map(pb::LookupResponse::state) {
            Some(pb::QueueState::Queued | pb::QueueState::Leased) => Ok(Lookup::Found(Box::new(OrderStatus {
                order_id: order_id.to_owned(),
                status: OrderState::Queued,
                reason: None,
                journey: lookup.as_ref().map(queued_journey),
                trace_id: lookup.as_ref().and_then(|answer| context::trace_id_in(&answer.trace_context)),
            }))),
            Some(pb::QueueState::NotFound) if executors_answered => Ok(Lookup::Unknown { archived_before_ms }),
            // Acknowledged (done) by the executors, who must then know it, but did
            // not answer in time; or nobody answered at all.
            _ => Err("The order's status cannot be read right now; please try again shortly.".to_owned()),
        }
    }

    pub async fn cluster(&self) -> ClusterStatus {
        let (executors, books_db, queue) =
            tokio::join!(self.group(&self.executors), self.group(&self.books_db), self.queue_depth());
        ClusterStatus { executors, books_db, queue }
    }

    async fn group(&self, replicas: &[Replica]) -> Vec<ReplicaStatus> {
        let answers = join_all(replicas.iter().map(|replica| async move {
            let mut client = RaftClient::new(replica.channel.clone());
            let metrics = within(self.deadline, client.metrics(pb::RaftMetricsRequest {})).await;
            metrics.and_then(|answer| serde_json::from_slice::<serde_json::Value>(&answer.payload).ok())
        }))
        .await;
        // A replica that does not answer is named by the group's membership, as a
        // replica that answers knows it (ids need not follow the list's order).
        let members: Vec<(u64, String)> = answers.iter().flatten().flat_map(member_addresses).collect();
        replicas
            .iter()
            .zip(&answers)
            .enumerate()
            .map(|(index, (replica, metrics))| match metrics {
                Some(metrics) => replica_status(&replica.url, metrics),
                None => ReplicaStatus {
                    id: member_id(&members, &replica.url).unwrap_or(index as u64 + 1),
                    address: replica.url.clone(),
                    role: Role::Unreachable,
                    term: 0,
                    last_applied: None,
                    answers: false,
                },
            })
            .collect()
    }

    async fn queue_depth(&self) -> Option<QueueDepth> {
        let mut queue = OrderQueueClient::new(self.queue.clone());
        let stats = within(self.deadline, queue.stats(pb::StatsRequest {})).await?;
        Some(QueueDepth { premium: stats.premium, basic: stats.basic, none: stats.none, leased: stats.leased })
    }
}

/// openraft's `RaftMetrics` (as JSON) → what the page shows.
fn replica_status(url: &str, metrics: &serde_json::Value) -> ReplicaStatus {
    ReplicaStatus {
        id: metrics["id"].as_u64().unwrap_or_default(),
        address: url.to_owned(),
        role: Role::from_server_state(metrics["state"].as_str().unwrap_or_default()),
        term: metrics["current_term"].as_u64().unwrap_or_default(),
        last_applied: metrics["last_applied"]["index"].as_u64(),
        answers: true,
    }
}

/// (id, address) of every member in openraft's metrics (`membership_config`).
fn member_addresses(metrics: &serde_json::Value) -> Vec<(u64, String)> {
    let nodes = metrics["membership_config"]["membership"]["nodes"].as_object();
    nodes
        .into_iter()
        .flatten()
        .filter_map(|(id, node)| Some((id.parse().ok()?, node["addr"].as_str()?.to_owned())))
        .collect()
}

/// The id of the member at `url`. Members may be written `host:port` or with a
/// scheme, as the Raft network takes both.
fn member_id(members: &[(u64, String)], url: &str) -> Option<u64> {
    let without_scheme = |text: &str| text.split_once("://").map_or(text, |(_, rest)| rest).to_owned();
    let address = without_scheme(url);
    members.iter().find(|(_, member)| without_scheme(member) == address).map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_order_is_said_to_be_archived_only_once_the_shop_forgets_orders() {
        assert_eq!(Lookup::unknown_message("o1", 0, 1_000_000), "There is no order o1.");
        let week = 7 * 86_400_000;
        let message = Lookup::unknown_message("o1", 1_000_000, 1_000_000 + week + 30_000);
        assert!(message.contains("kept for 7 days after they finish and then archived"), "{message}");
        assert_eq!(approximately(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(approximately(Duration::from_secs(150)), "2 minutes");
    }

    #[test]
    fn a_silent_replica_is_named_by_the_membership_others_report() {
        let metrics = serde_json::json!({"membership_config": {"membership": {
            "configs": [[0, 1, 2]],
            "nodes": {"0": {"addr": "shop-books-db-0.shop-books-db:50061"}, "2": {"addr": "shop-books-db-2.shop-books-db:50061"}}
        }}});
        let members = member_addresses(&metrics);
        assert_eq!(member_id(&members, "http://shop-books-db-2.shop-books-db:50061"), Some(2));
        assert_eq!(member_id(&members, "http://shop-books-db-0.shop-books-db:50061"), Some(0));
        assert_eq!(member_id(&members, "http://elsewhere:1"), None);
        let with_scheme = vec![(3, "http://127.0.0.1:50063".to_owned())];
        assert_eq!(member_id(&with_scheme, "http://127.0.0.1:50063"), Some(3));
    }

    #[test]
    fn reads_openraft_metrics() {
        let metrics = serde_json::json!({
            "id": 2, "current_term": 7, "state": "Leader",
            "last_applied": {"leader_id": {"term": 7, "node_id": 2}, "index": 41}
        });
        let status = replica_status("http://127.0.0.1:50062", &metrics);
        assert_eq!((status.id, status.role, status.term, status.last_applied), (2, Role::Leader, 7, Some(41)));
        let odd = replica_status("http://127.0.0.1:50062", &serde_json::json!({"id": 2, "state": "Elsewhere"}));
        assert_eq!(odd.role, Role::Unknown);
    }
}
