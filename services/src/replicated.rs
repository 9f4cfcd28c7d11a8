//! Running one replica of a Raft group, the same way for books_db and the order
//! executors: serve the group's service and the Raft peers' service, form the group
//! (idempotent, so every start may ask; members take turns, see
//! `Node::initialize`), run the group's own work beside it, and on shutdown stop
//! that work and release the Raft node's storage.

use std::collections::BTreeMap;

use consensus::{BasicNode, Node, NodeError, NodeId, RaftMetrics, StateMachine};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::Routes;

use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Raft(#[from] NodeError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("a service address is invalid: {0}")]
    Address(#[from] tonic::transport::Error),
}

/// Serves `routes` (the services named `services`, each reported healthy) and
/// the node's Raft service on `listener` until `shutdown`, forming the group `members` (id → address),
/// with the calls' and the replica's Raft metrics (as a replica of `group`) in
/// `metrics`. `beside` is aborted when serving ends.
#[allow(clippy::too_many_arguments)]
pub async fn run<M: StateMachine>(
    node: Node<M>,
    group: &str,
    listener: TcpListener,
    routes: Routes,
    services: &'static [&'static str],
    members: BTreeMap<NodeId, String>,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    beside: Option<JoinHandle<()>>,
) -> Result<(), ReplicaError> {
    metrics.register_collector(RaftMetrics::new(&node, group));
    let routes = routes.add_service(node.grpc_service());
    let serving = tokio::spawn(grpc::serve(listener, routes, services, metrics, shutdown));
    let formed = node.initialize(members.into_iter().map(|(id, addr)| (id, BasicNode::new(addr))).collect()).await;
    if formed.is_err() {
        serving.abort();
    }
    let served = serving.await;
    if let Some(task) = beside {
        task.abort();
    }
    node.shutdown().await?;
    formed?;
    match served {
        Ok(result) => Ok(result?),
        Err(join) => Err(ReplicaError::Serve(ServeError::Task(join.to_string()))),
    }
}
