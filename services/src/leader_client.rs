//! Calling a Raft-replicated service: try the replica believed to lead; when a
//! follower answers UNAVAILABLE with the leader's address (`x-leader-addr`), go
//! there; when a
//! replica is down, try the next. While the group elects a new leader every replica
//! may refuse, so after each full round without an answer the client pauses (25 ms,
//! doubling up to 100 ms: a round is a few loopback calls, and a shorter pause finds
//! the new leader sooner) and tries again, for at most `retry_window` (3 s by
//! default: a follower stands after 510–795 ms of silence).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use consensus::NodeError;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The metadata key a follower puts the leader's address under.
pub const LEADER_ADDR: &str = "x-leader-addr";

/// Maps a Raft write or read failure to the status a client of the group sees:
/// "not the leader" is UNAVAILABLE (this replica cannot serve it; another can),
/// with the leader's address when known. Every answer about the data itself is a
/// response, so nothing else a client retries means "not the leader".
pub fn status_from(error: NodeError) -> Status {
    match &error {
        NodeError::NotLeader { leader_addr, .. } => {
            let mut status = Status::unavailable(error.to_string());
            if let Some(value) = leader_addr.as_deref().and_then(|addr| MetadataValue::try_from(addr).ok()) {
                status.metadata_mut().insert(LEADER_ADDR, value);
            }
            status
        }
        NodeError::NoQuorum => Status::unavailable(error.to_string()),
        _ => {
            tracing::error!(%error, "replicated write failed");
            Status::unavailable(error.to_string())
        }
    }
}

pub struct LeaderClient {
    replicas: Vec<(String, Channel)>,
    /// Index of the replica believed to lead.
    leader: AtomicUsize,
    retry_window: Duration,
}

fn normalise(url: &str) -> &str {
    url.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/')
}

impl LeaderClient {
    pub fn new(urls: &[String], connect_timeout: Duration) -> Result<Self, tonic::transport::Error> {
        let replicas = urls
            .iter()
            .map(|url| {
                let url = if url.contains("://") { url.clone() } else { format!("http://{url}") };
                platform::grpc::channel(&url, connect_timeout).map(|channel| (url, channel))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { replicas, leader: AtomicUsize::new(0), retry_window: Duration::from_secs(3) })
    }

    /// How long one call may keep trying while the group has no leader.
    pub fn with_retry_window(mut self, retry_window: Duration) -> Self {
        self.retry_window = retry_window;
        self
    }

    /// The address of the replica believed to lead: the last one that answered, or
    /// after a failed call the next one to try.
    pub fn current(&self) -> &str {
        &self.replicas[self.leader.load(Ordering::Relaxed) % self.replicas.len()].0
    }

    /// Runs `call` against the leader, following hints and skipping replicas that
    /// are down.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        if self.replicas.is_empty() {
            return Err(Status::unavailable("no replicas are configured"));
        }
        let mut last_error = Status::unavailable("no replica answered");
        let give_up = tokio::time::Instant::now() + self.retry_window;
        let mut pause = Duration::from_millis(25);
        for attempt in 1.. {
            if attempt > 1 && (attempt - 1) % self.replicas.len() == 0 {
                if tokio::time::Instant::now() + pause > give_up {
                    break;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            let index = self.leader.load(Ordering::Relaxed) % self.replicas.len();
            match call(self.replicas[index].1.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(status) => {
                    let hinted =
                        status.metadata().get(LEADER_ADDR).and_then(|value| value.to_str().ok()).and_then(|addr| {
                            self.replicas.iter().position(|(url, _)| normalise(url) == normalise(addr))
                        });
                    // Another replica, or the same one later, may serve it; any other
                    // status is the service's answer and is not asked again.
                    let retry = matches!(
                        status.code(),
                        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                    );
                    if !retry {
                        return Err(status);
                    }
                    let next = hinted.filter(|&hint| hint != index).unwrap_or((index + 1) % self.replicas.len());
                    self.leader.store(next, Ordering::Relaxed);
                    last_error = status;
                }
            }
        }
        Err(last_error)
    }
}
