//! Pre-vote: a replica stands for election only once a majority of its group says it
//! could win.
//!
//! openraft 0.9 has no pre-vote. Left to its own timer, a follower cut off from its
//! group (a partition, a long pause) stands again and again, raising its term each
//! time; once it is back, its higher term makes the healthy leader step down, and the
//! group takes no writes while it elects a leader it did not need. So openraft's own
//! election timer is off (`enable_elect: false`) and the [`Guard`] keeps it instead:
//!
//! 1. Every replica notes when it last heard a leader (an AppendEntries or snapshot
//!    chunk its Raft accepted) or granted a vote: its [`Contact`]. A leader counts
//!    as hearing itself.
//! 2. A voter that has heard nothing for its election timeout, drawn anew each time
//!    from [`Config::silence_before_election`] (the same window as openraft's timer),
//!    asks every other voter `PreVote(its term + 1, its last log id)`.
//! 3. A voter says yes ([`Ballot::answer`]) only if it does not lead, has itself
//!    heard no leader for `election_timeout_max` (the leader's lease, during which
//!    openraft refuses a real vote anyway), and the candidate's log is at least as up
//!    to date as its own (the real vote's test). Terms are not compared: see
//!    [`decide`].
//! 4. With a majority of yeses (its own included), the replica asks openraft to stand
//!    (`trigger().elect()`), and openraft runs the real election. Either way it then
//!    waits a new timeout before asking again, and its contact counts from its own
//!    canvass: for a lease it refuses others, so two replicas that lost the leader
//!    together seldom both stand and split the vote. (A replica whose log is too
//!    short to win delays the one that can by at most a lease per try.)
//!
//! A pre-vote changes nothing on either side: no term or vote is stored. A follower
//! cut off keeps its term, and when it is back it hears the leader again and nothing
//! else happens. Liveness is as before: when the leader is gone, the others all stop
//! hearing it and say yes to each other. The chaos run's
//! `a_healed_follower_changes_no_leader` shows both sides of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::{CommittedLeaderId, ServerState};
use proto::v1 as pb;
use proto::v1::raft_client::RaftClient;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::config::Config;
use crate::log_store::LogTip;
use crate::network;
use crate::types::{LogId, NodeId, Raft, StateMachine};

/// When this replica last heard a leader or granted a vote (step 1). Cloning gives
/// another handle on the same moment.
#[derive(Clone)]
pub(crate) struct Contact(Arc<Mutex<Instant>>);

impl Contact {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    /// A leader was heard (or a vote granted) just now.
    pub(crate) fn heard(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn silence(&self) -> Duration {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }
}

/// How a replica answers pre-votes (step 3).
#[derive(Clone)]
pub(crate) struct Ballot {
    pub(crate) contact: Contact,
    pub(crate) tip: LogTip,
    /// How long after hearing a leader a replica refuses: the leader's lease.
    pub(crate) lease: Duration,
}

impl Ballot {
    /// Yes, or why not.
    pub(crate) fn answer<M: StateMachine>(
        &self,
        raft: &Raft<M>,
        request: &pb::RaftPreVoteRequest,
    ) -> Result<(), String> {
        let leads = raft.metrics().borrow().state == ServerState::Leader;
        let theirs = request.last_log_id.as_ref().map(log_id);
        decide(leads, self.contact.silence(), self.lease, theirs, self.tip.get())
    }
}

/// Step 3's rule: yes unless this replica leads, heard a leader within `lease`, or
/// holds a log ahead of the candidate's (`theirs`).
///
/// The candidate's term is not compared, as in the Raft thesis (§9.6). A pre-vote
/// raises no term, so terms can part: a replica that stood and lost (a lost vote
/// call, a split vote) is a term ahead of one whose log is longer. Refusing a
/// lower term would then refuse the only replica that can win the real vote
/// (openraft's votes compare logs first), while that replica refuses the other's
/// shorter log: no leader, ever. Granted here, the longer log stands; if its new term
/// is still not above the other's, it loses that vote, takes the other's term from
/// openraft's vote response (or keeps its own on a tie), and wins the next time.
fn decide(
    leads: bool,
    silence: Duration,
    lease: Duration,
    theirs: Option<LogId>,
    ours: Option<LogId>,
) -> Result<(), String> {
    if leads {
        return Err("replica leads the group".to_owned());
    }
    if silence < lease {
        return Err(format!("replica heard a leader {} ms ago", silence.as_millis()));
    }
    if theirs < ours {
        return Err(format!("replica's log (last {ours:?}) is ahead of the candidate's ({theirs:?})"));
    }
    Ok(())
}

fn log_id(id: &pb::RaftLogId) -> LogId {
    LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
}

fn log_id_message(id: &LogId) -> pb::RaftLogId {
    pb::RaftLogId { term: id.leader_id.term, node_id: id.leader_id.node_id, index: id.index }
}

/// Keeps a replica's election timer (steps 2 and 4) until told to stop.
pub(crate) struct Guard<M: StateMachine> {
    id: NodeId,
    raft: Raft<M>,
    ballot: Ballot,
    config: Config,
    /// Peer address → its client, made on first use.
    clients: HashMap<String, RaftClient<Channel>>,
}

impl<M: StateMachine> Guard<M> {
    /// Starts the guard of replica `id`; it ends when `stop` changes or is dropped.
    pub(crate) fn spawn(id: NodeId, raft: Raft<M>, ballot: Ballot, config: Config, stop: watch::Receiver<()>) {
        let guard = Self { id, raft, ballot, config, clients: HashMap::new() };
        tokio::spawn(guard.run(stop));
    }

    fn timeout(&self) -> Duration {
        let (shortest, longest) = self.config.silence_before_election();
        rand::thread_rng().gen_range(shortest..longest)
    }

    async fn run(mut self, mut stop: watch::Receiver<()>) {
        let tick = self.config.heartbeat_interval;
        let mut timeout = self.timeout();
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
            let (state, term, voters) = {
                let metrics = self.raft.metrics();
                let metrics = metrics.borrow();
                let membership = metrics.membership_config.membership();
                let voters: Vec<(NodeId, String)> = membership
                    .voter_ids()
                    .map(|id| (id, membership.get_node(&id).map(|node| node.addr.clone()).unwrap_or_default()))
                    .collect();
                (metrics.state, metrics.current_term, voters)
            };
            if state == ServerState::Leader {
                self.ballot.contact.heard();
                continue;
            }
            if !voters.iter().any(|(id, _)| *id == self.id) || self.ballot.contact.silence() < timeout {
                continue;
            }
            let (yes, asked) = self.canvass(term + 1, &voters).await;
            self.ballot.contact.heard();
            timeout = self.timeout();
            if yes * 2 > voters.len() {
                tracing::info!(
                    id = self.id,
                    term = term + 1,
                    yes,
                    voters = voters.len(),
                    "a majority would vote for this replica; standing"
                );
                if self.raft.trigger().elect().await.is_err() {
                    return;
                }
            } else {
                tracing::debug!(id = self.id, yes, asked, "no majority would vote for this replica; not standing");
            }
        }
    }

    /// Asks every other voter whether it would vote for this replica in `term`;
    /// answers the yeses (this replica's own included) and how many were asked.
    async fn canvass(&mut self, term: u64, voters: &[(NodeId, String)]) -> (usize, usize) {
        let request = pb::RaftPreVoteRequest {
            candidate: self.id,
            term,
            last_log_id: self.ballot.tip.get().as_ref().map(log_id_message),
        };
        let wait = self.config.election_timeout_min;
        let mut asks = Vec::new();
        for (peer, addr) in voters.iter().filter(|(id, _)| *id != self.id) {
            let client = match self.clients.get(addr) {
                Some(client) => client.clone(),
                None => match network::connect(addr, self.config.connect_timeout) {
                    Ok(channel) => {
                        let client = RaftClient::new(channel);
                        self.clients.insert(addr.clone(), client.clone());
                        client
                    }
                    Err(reason) => {
                        tracing::warn!(id = self.id, peer, %addr, %reason, "cannot ask this peer for a pre-vote");
                        continue;
                    }
                },
            };
            let mut call = tonic::Request::new(request);
            call.set_timeout(wait);
            asks.push(async move {
                let mut client = client;
                match client.pre_vote(call).await {
                    Ok(answer) => {
                        let answer = answer.into_inner();
                        if !answer.granted {
                            tracing::debug!(peer, refusal = %answer.refusal, "pre-vote refused");
                        }
                        answer.granted
                    }
                    Err(status) => {
                        tracing::debug!(peer, %status, "pre-vote not answered");
                        false
                    }
                }
            });
        }
        let asked = asks.len();
        let granted = futures::future::join_all(asks).await.into_iter().filter(|granted| *granted).count();
        (granted + 1, asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(360);
    const QUIET: Duration = Duration::from_millis(600);

    fn at(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn a_voter_that_heard_no_leader_says_yes_to_a_log_as_long_as_its_own() {
        assert_eq!(decide(false, QUIET, LEASE, at(3, 10), at(3, 10)), Ok(()));
        assert_eq!(decide(false, QUIET, LEASE, at(4, 2), at(3, 10)), Ok(()), "a later term's entry is ahead");
        assert_eq!(decide(false, QUIET, LEASE, at(3, 10), None), Ok(()));
    }

    #[test]
    fn a_voter_says_no_while_it_leads_or_within_the_lease_or_to_a_shorter_log() {
        assert!(decide(true, QUIET, LEASE, at(3, 10), at(3, 10)).is_err());
        let heard = decide(false, LEASE - Duration::from_millis(1), LEASE, at(3, 10), at(3, 10));
        assert!(heard.is_err_and(|why| why.contains("heard a leader")));
        let behind = decide(false, QUIET, LEASE, at(3, 9), at(3, 10));
        assert!(behind.is_err_and(|why| why.contains("ahead")));
        assert!(decide(false, QUIET, LEASE, None, at(1, 1)).is_err());
    }

    #[test]
    fn log_ids_travel_unchanged() {
        let id = LogId::new(CommittedLeaderId::new(7, 3), 42);
        assert_eq!(log_id(&log_id_message(&id)), id);
    }
}
