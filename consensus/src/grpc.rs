//! The server side of Raft's RPCs: the `Raft` gRPC service, which hands a peer's
//! request to this replica's openraft node and sends back its answer.
//!
//! The service is only a tonic service, not a server: the replica's binary adds it to
//! the routes it already serves (`platform::grpc::serve`, with health and
//! reflection), so this crate depends on no service crate. The Raft node's own
//! answer, an error included, goes back in the payload (the peer's openraft acts on
//! it); a gRPC status is only for a request that could not be handled at all.

use openraft::raft::{AppendEntriesResponse, InstallSnapshotRequest};
use proto::v1 as pb;
use proto::v1::raft_server::{Raft as RaftRpc, RaftServer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::config::MAX_MESSAGE_BYTES;
use crate::election::Ballot;
use crate::types::{Group, Raft, StateMachine};

#[derive(Debug, thiserror::Error)]
enum GrpcError {
    #[error("the Raft request is not openraft's JSON: {0}")]
    Undecodable(serde_json::Error),
    #[error("encoding the Raft answer failed: {0}")]
    Unencodable(serde_json::Error),
}

impl From<GrpcError> for Status {
    fn from(error: GrpcError) -> Self {
        match error {
            GrpcError::Undecodable(_) => Status::invalid_argument(error.to_string()),
            GrpcError::Unencodable(_) => Status::internal(error.to_string()),
        }
    }
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, GrpcError> {
    serde_json::from_slice(payload).map_err(GrpcError::Undecodable)
}

fn encode<T: Serialize>(answer: &T) -> Result<Vec<u8>, GrpcError> {
    serde_json::to_vec(answer).map_err(GrpcError::Unencodable)
}

/// The `bookstore.v1.Raft` service of one replica of a group replicating `M`.
pub struct RaftGrpc<M: StateMachine> {
    raft: Raft<M>,
    /// Notes a leader heard or a vote granted, and answers pre-votes (`election.rs`).
    ballot: Ballot,
}

impl<M: StateMachine> RaftGrpc<M> {
    /// The tonic service, accepting messages as large as peers send.
    pub(crate) fn server(raft: Raft<M>, ballot: Ballot) -> RaftServer<Self> {
        RaftServer::new(Self { raft, ballot })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl<M: StateMachine> RaftRpc for RaftGrpc<M> {
    async fn append_entries(
        &self,
        request: Request<pb::RaftAppendEntriesRequest>,
    ) -> Result<Response<pb::RaftAppendEntriesResponse>, Status> {
        let rpc = decode(&request.into_inner().payload)?;
        let answer = self.raft.append_entries(rpc).await;
        // Accepted as coming from the current leader (a conflict too: the leader
        // then walks back to where the logs agree).
        if matches!(
            answer,
            Ok(AppendEntriesResponse::Success
                | AppendEntriesResponse::PartialSuccess(_)
                | AppendEntriesResponse::Conflict)
        ) {
            self.ballot.contact.heard();
        }
        Ok(Response::new(pb::RaftAppendEntriesResponse { payload: encode(&answer)? }))
    }

    async fn vote(&self, request: Request<pb::RaftVoteRequest>) -> Result<Response<pb::RaftVoteResponse>, Status> {
        let rpc = decode(&request.into_inner().payload)?;
        let answer = self.raft.vote(rpc).await;
        if answer.as_ref().is_ok_and(|vote| vote.vote_granted) {
            self.ballot.contact.heard();
        }
        Ok(Response::new(pb::RaftVoteResponse { payload: encode(&answer)? }))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftInstallSnapshotRequest>,
    ) -> Result<Response<pb::RaftInstallSnapshotResponse>, Status> {
        let pb::RaftInstallSnapshotRequest { payload, data } = request.into_inner();
        let mut rpc: InstallSnapshotRequest<Group<M>> = decode(&payload)?;
        rpc.data = data;
        let answer = self.raft.install_snapshot(rpc).await;
        if answer.is_ok() {
            self.ballot.contact.heard();
        }
        Ok(Response::new(pb::RaftInstallSnapshotResponse { payload: encode(&answer)? }))
    }

    async fn pre_vote(
        &self,
        request: Request<pb::RaftPreVoteRequest>,
    ) -> Result<Response<pb::RaftPreVoteResponse>, Status> {
        let request = request.into_inner();
        let answer = self.ballot.answer(&self.raft, &request);
        if let Err(refusal) = &answer {
            tracing::debug!(candidate = request.candidate, term = request.term, %refusal, "pre-vote refused");
        }
        let refusal = answer.err().unwrap_or_default();
        Ok(Response::new(pb::RaftPreVoteResponse { granted: refusal.is_empty(), refusal }))
    }

    async fn metrics(
        &self,
        _request: Request<pb::RaftMetricsRequest>,
    ) -> Result<Response<pb::RaftMetricsResponse>, Status> {
        let metrics = self.raft.metrics().borrow().clone();
        Ok(Response::new(pb::RaftMetricsResponse { payload: encode(&metrics)? }))
    }
}
