//! The gRPC face of a books_db replica: commands go through the group's Raft log
//! (only the leader accepts them), stock reads are linearizable.

use std::sync::Arc;

use consensus::Node;
use domain::Catalog;
use proto::order_line::order_lines_from_proto;
use proto::v1 as pb;
use proto::v1::books_db_server::BooksDb;
use tonic::{Request, Response, Status};

use super::state::{BooksState, Command, Decision, Outcome};
use crate::leader_client::status_from;

pub struct BooksDbService {
    node: Node<BooksState>,
    catalog: Arc<Catalog>,
    /// Set once this replica has seen the stock loaded (it never unloads).
    loaded: tokio::sync::OnceCell<()>,
}

impl BooksDbService {
    pub fn new(node: Node<BooksState>, catalog: Arc<Catalog>) -> Self {
        Self { node, catalog, loaded: tokio::sync::OnceCell::new() }
    }

    /// The first prepare or leader stock read a new group's leader serves loads
    /// the catalog's stock through the log first (the state machine ignores any
    /// later load), so neither ever sees an empty database. Requests arriving
    /// together wait for the one load rather than each proposing its own. A
    /// replica's local read may still be empty until it has applied the load.
    async fn ensure_loaded(&self) -> Result<(), Status> {
        self.loaded
            .get_or_try_init(|| async {
                if !self.node.read(BooksState::is_loaded) {
                    self.write(Command::load(&self.catalog)).await?;
                    tracing::info!(books = self.catalog.books().len(), "loaded the catalog's stock");
                }
                Ok::<(), Status>(())
            })
            .await
            .copied()
    }

    async fn write(&self, command: Command) -> Result<Outcome, Status> {
        self.node.write(command).await.map_err(status_from)
    }
}

fn order_id(id: &str) -> Result<String, Status> {
    platform::grpc::order_id(id).map(str::to_owned)
}

/// A decision's answer: how the order ended here. A decision that contradicts the
/// one recorded (a coordinator bug) changes nothing and is answered with the
/// recorded one, so the caller sees the conflict; logged here, loudly.
fn acknowledged(order_id: &str, outcome: Outcome, held: Option<Decision>) -> Result<Response<pb::BooksAck>, Status> {
    let outcome = match outcome {
        Outcome::Committed => pb::BooksOutcome::Committed,
        Outcome::Aborted => pb::BooksOutcome::Aborted,
        Outcome::Conflict { reason } => {
            tracing::error!(%order_id, %reason, ?held, "a decision contradicts the one recorded: not applied");
            match held {
                Some(Decision::Committed) => pb::BooksOutcome::Committed,
                Some(Decision::Aborted) => pb::BooksOutcome::Aborted,
                None => pb::BooksOutcome::NotPrepared,
            }
        }
        other => return Err(Status::internal(format!("unexpected outcome {other:?}"))),
    };
    Ok(Response::new(pb::BooksAck { outcome: outcome.into() }))
}

#[tonic::async_trait]
impl BooksDb for BooksDbService {
    async fn prepare(&self, request: Request<pb::BooksPrepareRequest>) -> Result<Response<pb::BooksVote>, Status> {
        let request = request.into_inner();
        let order_id = order_id(&request.order_id)?;
        let lines = order_lines_from_proto("lines", &request.lines)
            .map_err(|error| Status::invalid_argument(format!("{}: {}", error.field, error.message)))?;
        self.ensure_loaded().await?;
        let vote = match self.write(Command::Prepare { order_id: order_id.clone(), lines }).await? {
            Outcome::Reserved => pb::BooksVote { yes: true, reason: String::new() },
            Outcome::Refused { reason } => pb::BooksVote { yes: false, reason },
            other => return Err(Status::internal(format!("unexpected outcome {other:?}"))),
        };
        tracing::info!(%order_id, yes = vote.yes, reason = %vote.reason, "prepare");
        Ok(Response::new(vote))
    }

    async fn commit(&self, request: Request<pb::BooksDecision>) -> Result<Response<pb::BooksAck>, Status> {
        let order_id = order_id(&request.get_ref().order_id)?;
        let outcome = self.write(Command::Commit { order_id: order_id.clone() }).await?;
        acknowledged(&order_id, outcome, self.node.read(|state| state.decision(&order_id)))
    }

    async fn abort(&self, request: Request<pb::BooksDecision>) -> Result<Response<pb::BooksAck>, Status> {
        let order_id = order_id(&request.get_ref().order_id)?;
        let outcome = self.write(Command::Abort { order_id: order_id.clone() }).await?;
        acknowledged(&order_id, outcome, self.node.read(|state| state.decision(&order_id)))
    }

    async fn stock(&self, request: Request<pb::StockRequest>) -> Result<Response<pb::StockResponse>, Status> {
        let request = request.into_inner();
        let wanted = request.book_ids;
        let view = |state: &BooksState| -> Vec<pb::BookStock> {
            state
                .books()
                .filter(|(id, _)| wanted.is_empty() || wanted.contains(id))
                .map(|(id, stock)| pb::BookStock {
                    book_id: id.clone(),
                    title: stock.title.clone(),
                    available: stock.available,
                    reserved: stock.reserved,
                    sold: stock.sold,
                    initial: stock.initial,
                })
                .collect()
        };
        if !request.local {
            self.ensure_loaded().await?;
        }
        let books = if request.local {
            self.node.read(view)
        } else {
            self.node.read_linearizable(view).await.map_err(status_from)?
        };
        Ok(Response::new(pb::StockResponse { books }))
    }
}
