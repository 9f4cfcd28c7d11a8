//! The client side of Raft's RPCs: openraft's requests to a peer over the `Raft`
//! gRPC service (`proto/bookstore/v1/raft.proto`), JSON in a `bytes` payload.
//!
//! A peer that is down must cost the leader nothing but that peer's replication: each
//! call has a deadline shorter than openraft's own (its soft TTL), connecting has its
//! own short timeout, and a peer that cannot be reached is reported `Unreachable`, so
//! openraft backs off (100 ms) instead of retrying it at once. One channel per peer address is
//! created on first use and shared by every later client to that peer; tonic
//! reconnects it when the peer comes back, and HTTP/2 keepalive notices a peer gone
//! silent (no FIN after a partition) so the channel does not stay stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use proto::v1 as pb;
use proto::v1::raft_client::RaftClient;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::config::MAX_MESSAGE_BYTES;
use crate::types::{Group, NodeId, StateMachine};

/// HTTP/2 pings on an idle connection, and how long one may go unanswered before
/// the connection is dropped and the next call reconnects.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a call to a peer failed before the peer's Raft answered.
#[derive(Debug, thiserror::Error)]
enum PeerFailure {
    #[error("peer {target} has an unusable address {addr:?}: {reason}")]
    BadAddress { target: NodeId, addr: String, reason: String },
    #[error("peer {target} failed the call: {status}")]
    Status { target: NodeId, status: Status },
    #[error("encoding the request or decoding peer {target}'s answer failed: {source}")]
    Serde { target: NodeId, source: serde_json::Error },
}

/// Makes the clients openraft uses to reach this replica's peers.
pub(crate) struct Network {
    id: NodeId,
    connect_timeout: Duration,
    /// Peer address → its channel.
    channels: HashMap<String, Channel>,
    /// Whether each peer answered its last call, shared by every client to it, so
    /// that losing and regaining a peer is logged once each (openraft's own logs of
    /// every failed retry are filtered out by default: see `platform/src/telemetry/mod.rs`).
    reachable: HashMap<NodeId, Arc<AtomicBool>>,
}

impl Network {
    pub(crate) fn new(id: NodeId, connect_timeout: Duration) -> Self {
        Self { id, connect_timeout, channels: HashMap::new(), reachable: HashMap::new() }
    }

    fn channel(&mut self, target: NodeId, addr: &str) -> Result<Channel, PeerFailure> {
        if let Some(channel) = self.channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = connect(addr, self.connect_timeout).map_err(|reason| PeerFailure::BadAddress {
            target,
            addr: addr.to_owned(),
            reason,
        })?;
        self.channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// A channel to the peer at `addr` (`host:port` or a URL), connected on first use,
/// or why the address is unusable.
pub(crate) fn connect(addr: &str, connect_timeout: Duration) -> Result<Channel, String> {
    let url = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    let endpoint = Endpoint::from_shared(url).map_err(|e| e.to_string())?;
    // Never connected to itself: a peer retrying a stopped replica's port must
    // not hold it when the replica restarts (`platform::grpc::Connector`).
    Ok(endpoint
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(platform::grpc::Connector))
}

impl<M: StateMachine> RaftNetworkFactory<Group<M>> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let client = self.channel(target, &node.addr).map(|channel| {
            RaftClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        });
        let reachable = Arc::clone(self.reachable.entry(target).or_insert_with(|| Arc::new(AtomicBool::new(true))));
        Peer { id: self.id, target, node: node.clone(), client, reachable }
    }
}

/// openraft's client to one peer.
pub(crate) struct Peer {
    id: NodeId,
    target: NodeId,
    node: BasicNode,
    /// An unusable address fails every call, as unreachable.
    client: Result<RaftClient<Channel>, PeerFailure>,
    reachable: Arc<AtomicBool>,
}

type CallError<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

#[expect(clippy::result_large_err, reason = "openraft's RaftNetwork returns this error type")]
impl Peer {
    fn client<E: std::error::Error>(&self) -> Result<RaftClient<Channel>, CallError<E>> {
        self.client.as_ref().cloned().map_err(|e| Unreachable::new(e).into())
    }

    fn encode<T: Serialize, E: std::error::Error>(&self, request: &T) -> Result<Vec<u8>, CallError<E>> {
        serde_json::to_vec(request)
            .map_err(|source| NetworkError::new(&PeerFailure::Serde { target: self.target, source }).into())
    }

    /// The peer's answer: its Raft's response, or its Raft's error as a remote error.
    fn decode<T, E>(&self, payload: &[u8]) -> Result<T, CallError<E>>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(peer = self.target, addr = %self.node.addr, "the peer answers again");
        }
        match serde_json::from_slice::<Result<T, RaftError<NodeId, E>>>(payload) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(RemoteError::new_with_node(self.target, self.node.clone(), error).into()),
            Err(source) => Err(NetworkError::new(&PeerFailure::Serde { target: self.target, source }).into()),
        }
    }

    /// A peer that is down or not listening is unreachable (openraft backs off); a
    /// call past its deadline timed out; anything else is a network error (retried).
    fn failed<E: std::error::Error>(&self, status: Status, action: RPCTypes, option: &RPCOption) -> CallError<E> {
        match status.code() {
            Code::DeadlineExceeded | Code::Cancelled => {
                Timeout { action, id: self.id, target: self.target, timeout: option.soft_ttl() }.into()
            }
            code => {
                let failure = PeerFailure::Status { target: self.target, status };
                if code == Code::Unavailable {
                    if self.reachable.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            peer = self.target,
                            addr = %self.node.addr,
                            error = %failure,
                            "the peer is unreachable; retrying every {UNREACHABLE_RETRY:?} (logged again when it answers)"
                        );
                    }
                    Unreachable::new(&failure).into()
                } else {
                    NetworkError::new(&failure).into()
                }
            }
        }
    }
}

/// A gRPC request that gives up before openraft's own deadline does, so the failure
/// is classified here rather than as a bare timeout.
fn with_deadline<T>(message: T, option: &RPCOption) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(option.soft_ttl());
    request
}

impl<M: StateMachine> RaftNetwork<Group<M>> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Group<M>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, CallError<openraft::error::Infallible>> {
        let payload = self.encode(&rpc)?;
        let request = with_deadline(pb::RaftAppendEntriesRequest { payload }, &option);
        let response = self
            .client()?
            .append_entries(request)
            .await
            .map_err(|status| self.failed(status, RPCTypes::AppendEntries, &option))?;
        self.decode(&response.into_inner().payload)
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<Group<M>>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, CallError<InstallSnapshotError>> {
        let data = std::mem::take(&mut rpc.data);
        let payload = self.encode(&rpc)?;
        let request = with_deadline(pb::RaftInstallSnapshotRequest { payload, data }, &option);
        let response = self
            .client()?
            .install_snapshot(request)
            .await
            .map_err(|status| self.failed(status, RPCTypes::InstallSnapshot, &option))?;
        self.decode(&response.into_inner().payload)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, CallError<openraft::error::Infallible>> {
        let payload = self.encode(&rpc)?;
        let request = with_deadline(pb::RaftVoteRequest { payload }, &option);
        let response =
            self.client()?.vote(request).await.map_err(|status| self.failed(status, RPCTypes::Vote, &option))?;
        self.decode(&response.into_inner().payload)
    }

    /// The pause between calls to a peer reported `Unreachable`. openraft's default
    /// is 500 ms; a restarted replica then waits that long to hear the leader, and
    /// if its own election timer (510–795 ms from its start) runs out first it
    /// stands, and its higher term deposes a healthy leader (openraft 0.9 has no
    /// pre-vote of its own; `election.rs` adds one). A failed call to a loopback or LAN peer costs little, so retry
    /// every 100 ms.
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(UNREACHABLE_RETRY))
    }
}

/// See [`Peer::backoff`].
const UNREACHABLE_RETRY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use openraft::Vote;
    use serde::{Deserialize, Serialize};
    use tokio::net::TcpListener;

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Nothing;

    impl StateMachine for Nothing {
        type Command = ();
        type Output = ();

        fn apply(&mut self, _: &()) {}
    }

    async fn vote_to(addr: String) -> Result<VoteResponse<NodeId>, CallError<openraft::error::Infallible>> {
        let mut network = Network::new(1, Duration::from_millis(100));
        let mut peer = RaftNetworkFactory::<Group<Nothing>>::new_client(&mut network, 2, &BasicNode::new(addr)).await;
        let request = VoteRequest::new(Vote::new(1, 1), None);
        RaftNetwork::<Group<Nothing>>::vote(&mut peer, request, RPCOption::new(Duration::from_millis(400))).await
    }

    #[tokio::test]
    async fn a_peer_that_is_down_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);

        let error = vote_to(addr.to_string()).await.expect_err("nobody listens");
        assert!(matches!(error, RPCError::Unreachable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        // Accepts connections and never speaks HTTP/2.
        let silent = tokio::spawn(async move {
            let mut accepted = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                accepted.push(stream);
            }
        });

        let error = vote_to(addr.to_string()).await.expect_err("nobody answers");
        assert!(matches!(error, RPCError::Timeout(_)), "{error:?}");
        silent.abort();
    }

    #[tokio::test]
    async fn a_peer_with_an_unusable_address_is_unreachable() {
        let error = vote_to("http://bad address".to_owned()).await.expect_err("no such address");
        assert!(matches!(error, RPCError::Unreachable(_)), "{error:?}");
    }
}
