//! books_db: the book catalog's stock, replicated by Raft across three replicas
//! (`consensus`), and a two-phase-commit participant. [`state`] is the replicated
//! state machine, [`handler`] its gRPC face; [`start`] runs one replica.

mod handler;
pub mod state;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use consensus::{Config, Node, NodeId};
use domain::Catalog;
use platform::metrics::Registry;
use tokio::net::TcpListener;

pub use handler::BooksDbService;
use state::{BooksState, Command};

use crate::replicated::{self, ReplicaError};

impl consensus::StateMachine for BooksState {
    type Command = Command;
    type Output = state::Outcome;

    fn apply(&mut self, command: &Command) -> state::Outcome {
        BooksState::apply(self, command)
    }
}

/// What a replica's port serves.
const SERVICES: &[&str] = &["bookstore.v1.BooksDb", "bookstore.v1.Raft"];

/// The Raft settings of the books_db group.
pub fn raft_config() -> Config {
    Config { cluster_name: "books_db".to_owned(), ..Config::default() }
}

/// Runs replica `id` of the group `members` (id → address) on `listener` until
/// `shutdown`: serves the books_db and Raft services and forms the group on first
/// start (idempotent). The leader loads the catalog's stock on its first request,
/// and starts a new window of decisions every `retention`. Its metrics go to
/// `metrics`.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    id: NodeId,
    listener: TcpListener,
    members: BTreeMap<NodeId, String>,
    data_dir: &Path,
    catalog: Arc<Catalog>,
    config: &Config,
    retention: Duration,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReplicaError> {
    let node = Node::<BooksState>::start(id, data_dir, config).await?;
    tokio::spawn(rotate(node.clone(), retention));
    let service = BooksDbService::new(node.clone(), catalog);
    let routes = tonic::service::Routes::new(proto::v1::books_db_server::BooksDbServer::new(service));
    let group = &config.cluster_name;
    replicated::run(node, group, listener, routes, SERVICES, members, metrics, shutdown, None).await
}

/// While this replica leads, logs `Rotate` every `every`; ends with the node.
async fn rotate(node: Node<BooksState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !node.is_leader() {
            continue;
        }
        match node.write(Command::Rotate).await {
            Ok(_) => tracing::debug!("a new window of decisions"),
            Err(consensus::NodeError::Stopped(_)) => return,
            Err(error) => tracing::debug!(%error, "the window turns at the next round"),
        }
    }
}
