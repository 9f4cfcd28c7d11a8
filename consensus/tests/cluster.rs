//! Replicas of a small key-value machine on loopback, talking gRPC: a group forms,
//! replicates, fails over, and replicas restarted from disk end with the same state.
//! Waits go through openraft's `wait()` (metrics), never fixed sleeps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use consensus::{BasicNode, Config, Node, NodeError, NodeId, StateMachine};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

/// Generous: the machine may be busy; nothing here asserts how fast anything is.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Elections a write may have to ride out before it gives up.
const WRITE_ATTEMPTS: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kv(BTreeMap<String, String>);

/// Setting a key is idempotent, so a write retried after a lost leader is harmless.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Set {
    key: String,
    value: String,
}

impl StateMachine for Kv {
    type Command = Set;
    /// The key's previous value.
    type Output = Option<String>;

    fn apply(&mut self, command: &Set) -> Option<String> {
        self.0.insert(command.key.clone(), command.value.clone())
    }
}

fn config() -> Config {
    Config {
        cluster_name: "test".to_owned(),
        snapshot_every_entries: None,
        entries_kept_after_snapshot: 0,
        ..Config::default()
    }
}

/// A replica and the gRPC server its peers reach it through.
struct Replica {
    node: Node<Kv>,
    addr: SocketAddr,
    stop_serving: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Replica {
    async fn start(id: NodeId, dir: &Path, listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("bound address");
        let node = Node::<Kv>::start(id, dir, &config()).await.expect("replica starts");
        let (stop_serving, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(Server::builder().add_service(node.grpc_service()).serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = stopped.await;
            },
        ));
        Self { node, addr, stop_serving, server }
    }

    /// A group of one: replica 1, initialized with itself as the only member.
    async fn alone(dir: &Path) -> Self {
        let listener = listener().await;
        let members = BTreeMap::from([(1, BasicNode::new(listener.local_addr().expect("address")))]);
        let replica = Self::start(1, dir, listener).await;
        replica.node.initialize(members).await.expect("initialize");
        replica
    }

    /// Stops serving and stops the node; answers the address, free to bind again.
    async fn stop(self) -> SocketAddr {
        let _ = self.stop_serving.send(());
        self.node.shutdown().await.expect("replica shuts down");
        tokio::time::timeout(TIMEOUT, self.server)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server ran");
        self.addr
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// Waits until `node` knows a leader other than `excluded`.
async fn leader_seen_by(node: &Node<Kv>, excluded: Option<NodeId>) -> NodeId {
    let metrics = node
        .raft()
        .wait(Some(TIMEOUT))
        .metrics(|m| m.current_leader.is_some_and(|leader| Some(leader) != excluded), "a leader is known")
        .await
        .expect("a leader is elected");
    metrics.current_leader.expect("checked above")
}

/// Writes through whichever replica leads, following the group through elections.
async fn write(replicas: &[&Replica], key: &str, value: &str) {
    let command = Set { key: key.to_owned(), value: value.to_owned() };
    let mut leader = leader_seen_by(&replicas[0].node, None).await;
    for _ in 0..WRITE_ATTEMPTS {
        let Some(replica) = replicas.iter().find(|r| r.node.id() == leader) else {
            // A stale view of a stopped leader: wait for its successor.
            leader = leader_seen_by(&replicas[0].node, Some(leader)).await;
            continue;
        };
        match replica.node.write(command.clone()).await {
            Ok(_) => return,
            Err(NodeError::NotLeader { .. }) => leader = leader_seen_by(&replica.node, Some(leader)).await,
            Err(error) => panic!("write {key}={value} failed: {error}"),
        }
    }
    panic!("write {key}={value} found no stable leader in {WRITE_ATTEMPTS} attempts");
}

/// Waits until every replica applied what `leader` applied, and answers its state.
async fn converged(leader: &Node<Kv>, replicas: &[&Replica]) -> Kv {
    let applied = leader.state().last_applied_index();
    for replica in replicas {
        replica
            .node
            .raft()
            .wait(Some(TIMEOUT))
            .applied_index_at_least(applied, "caught up with the leader")
            .await
            .expect("replica catches up");
    }
    let state = leader.read(Kv::clone);
    for replica in replicas {
        assert_eq!(replica.node.read(Kv::clone), state, "replica {} diverged", replica.node.id());
    }
    state
}

fn expected(keys: std::ops::Range<u32>) -> Kv {
    Kv(keys.map(|i| (format!("k{i}"), format!("v{i}"))).collect())
}

/// Replicas 1, 2 and 3, one in each of `dirs`, each on a port of its own; the group
/// is not formed yet. Answers the members (id → address) and the replicas.
async fn three_replicas(dirs: &[tempfile::TempDir]) -> (BTreeMap<NodeId, BasicNode>, Vec<Replica>) {
    let mut listeners = Vec::new();
    for _ in dirs {
        listeners.push(listener().await);
    }
    let members = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as NodeId + 1, BasicNode::new(l.local_addr().expect("address"))))
        .collect();
    let mut replicas = Vec::new();
    for ((id, dir), listener) in (1..).zip(dirs).zip(listeners) {
        replicas.push(Replica::start(id, dir.path(), listener).await);
    }
    (members, replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_replicate_fail_over_and_catch_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (members, mut replicas) = three_replicas(&dirs).await;

    // Every member initializes: the first one forms the group, the rest change nothing.
    for replica in &replicas {
        replica.node.initialize(members.clone()).await.expect("initialize");
    }
    replicas[0].node.initialize(members.clone()).await.expect("initialize is idempotent");

    for i in 0..10 {
        write(&replicas.iter().collect::<Vec<_>>(), &format!("k{i}"), &format!("v{i}")).await;
    }
    let leader_id = leader_seen_by(&replicas[0].node, None).await;
    let leader = replicas.iter().find(|r| r.node.id() == leader_id).expect("leader is a member");
    let all: Vec<&Replica> = replicas.iter().collect();
    assert_eq!(converged(&leader.node, &all).await, expected(0..10));

    // Reads: linearizable on the leader; a follower names the leader.
    let on_leader = leader.node.read_linearizable(|kv| kv.0.get("k3").cloned()).await;
    assert_eq!(on_leader.expect("leader reads"), Some("v3".to_owned()));
    let follower = replicas.iter().find(|r| r.node.id() != leader_id).expect("a follower");
    match follower.node.read_linearizable(|kv| kv.0.len()).await {
        Err(NodeError::NotLeader { leader_id: named, .. }) => assert_eq!(named, Some(leader_id)),
        other => panic!("a follower served a linearizable read: {other:?}"),
    }

    // Reads arriving together share a leadership confirmation (a heartbeat round),
    // and each still sees the write its caller completed just before it (the same
    // value again, so the state stays `expected`).
    const READS: u32 = 100;
    let rounds = leader.node.read_rounds();
    let reads = futures::future::join_all((0..READS).map(|i| {
        let (key, value) = (format!("k{}", i % 10), format!("v{}", i % 10));
        async move {
            leader.node.write(Set { key: key.clone(), value: value.clone() }).await.expect("rewritten");
            (value, leader.node.read_linearizable(move |kv| kv.0.get(&key).cloned()).await)
        }
    }))
    .await;
    for (value, read) in reads {
        assert_eq!(read.expect("the leader reads"), Some(value));
    }
    let rounds = leader.node.read_rounds() - rounds;
    assert!((1..u64::from(READS)).contains(&rounds), "{READS} concurrent reads took {rounds} confirmations");

    // The leader goes down: the others elect a new one and keep accepting writes.
    let position = replicas.iter().position(|r| r.node.id() == leader_id).expect("leader");
    let stopped = replicas.remove(position);
    let stopped_addr = stopped.stop().await;
    let survivors: Vec<&Replica> = replicas.iter().collect();
    let new_leader_id = leader_seen_by(&survivors[0].node, Some(leader_id)).await;
    assert_ne!(new_leader_id, leader_id);
    for i in 10..20 {
        write(&survivors, &format!("k{i}"), &format!("v{i}")).await;
    }
    let new_leader_id = leader_seen_by(&survivors[0].node, Some(leader_id)).await;
    let new_leader = survivors.iter().find(|r| r.node.id() == new_leader_id).expect("a survivor leads");
    assert_eq!(converged(&new_leader.node, &survivors).await, expected(0..20));

    // Compact the leader's log: the stopped replica can only catch up by a snapshot.
    compact(&new_leader.node).await;

    // The old leader comes back from its data directory, at its address.
    let listener = TcpListener::bind(stopped_addr).await.expect("rebind the stopped replica's address");
    let dir = dirs[position].path();
    let restarted = Replica::start(leader_id, dir, listener).await;
    restarted.node.initialize(members).await.expect("initializing a member again changes nothing");
    replicas.push(restarted);
    let all: Vec<&Replica> = replicas.iter().collect();
    write(&all, "k20", "v20").await;
    let leader_id = leader_seen_by(&all[0].node, None).await;
    let leader = all.iter().find(|r| r.node.id() == leader_id).expect("a member leads");
    assert_eq!(converged(&leader.node, &all).await, expected(0..21));
    let restarted = replicas.last().expect("restarted replica");
    let snapshot = restarted.node.raft().metrics().borrow().snapshot;
    assert!(snapshot.is_some(), "the restarted replica caught up through a snapshot");

    for replica in replicas {
        replica.stop().await;
    }
}

/// Waits until every replica in `replicas` names the same leader, and answers the
/// leader and the term each replica is in.
async fn agreed_leader(replicas: &[&Replica]) -> (NodeId, Vec<u64>) {
    let leader = leader_seen_by(&replicas[0].node, None).await;
    let mut terms = Vec::new();
    for replica in replicas {
        let metrics = replica
            .node
            .raft()
            .wait(Some(TIMEOUT))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .expect("a leader is elected");
        assert_eq!(metrics.current_leader, Some(leader), "replica {} follows another leader", replica.node.id());
        terms.push(metrics.current_term);
    }
    (leader, terms)
}

/// Every one of `replicas` forms the group `members` at the same moment.
async fn form_together(replicas: &[&Replica], members: &BTreeMap<NodeId, BasicNode>) {
    let forming = replicas.iter().map(|replica| replica.node.initialize(members.clone()));
    for formed in futures::future::join_all(forming).await {
        formed.expect("initialize");
    }
}

/// Every member of a fresh group forms it at the same moment (as three processes
/// started together do): one replica stands, in term 1, and leads; no second
/// candidate in term 1 holds its own vote against it and later deposes it. With
/// the lowest member down, the next one forms the group in its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_forming_a_group_together_elect_one_leader_in_the_first_term() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (members, replicas) = three_replicas(&dirs).await;
    let all: Vec<&Replica> = replicas.iter().collect();
    form_together(&all, &members).await;
    write(&all, "k", "v").await;
    assert_eq!(agreed_leader(&all).await, (1, vec![1, 1, 1]), "the lowest member leads from term 1");
    for replica in replicas {
        replica.stop().await;
    }

    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (members, mut replicas) = three_replicas(&dirs).await;
    replicas.remove(0).stop().await;
    let alive: Vec<&Replica> = replicas.iter().collect();
    form_together(&alive, &members).await;
    write(&alive, "k", "v").await;
    assert_eq!(agreed_leader(&alive).await, (2, vec![1, 1]), "with member 1 down, member 2 leads from term 1");
}

/// Pre-vote raises no term, so terms and logs can part: here one replica stood alone
/// (as after lost vote calls) and is terms ahead, while the only other one alive
/// holds the longer log. The longer log must still win: a pre-vote that compared
/// terms would have each refuse the other for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_ahead_in_term_but_behind_in_log_does_not_stall_the_election() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (members, replicas) = three_replicas(&dirs).await;
    let mut replicas: Vec<Option<Replica>> = replicas.into_iter().map(Some).collect();
    let all: Vec<&Replica> = replicas.iter().flatten().collect();
    all[0].node.initialize(members.clone()).await.expect("initialize");
    for i in 0..5 {
        write(&all, &format!("k{i}"), &format!("v{i}")).await;
    }
    let leader = leader_seen_by(&all[0].node, None).await;
    let index = |id: NodeId| usize::try_from(id - 1).expect("small id");
    let behind = if leader == 1 { 2 } else { 1 };
    let ahead = 6 - leader - behind;

    // `behind` misses five writes; then the other two stop as well.
    let mut take = |id: NodeId| replicas[index(id)].take().expect("running");
    let behind_addr = take(behind).stop().await;
    let (leading, ahead_replica) = (take(leader), take(ahead));
    for i in 5..10 {
        write(&[&leading, &ahead_replica], &format!("k{i}"), &format!("v{i}")).await;
    }
    converged(&leading.node, &[&ahead_replica]).await;
    let ahead_addr = ahead_replica.stop().await;
    leading.stop().await;

    // `behind` comes back alone and stands three times: no one answers, its term rises.
    let behind_replica =
        Replica::start(behind, dirs[index(behind)].path(), TcpListener::bind(behind_addr).await.expect("rebind")).await;
    let term = behind_replica.node.term();
    for _ in 0..3 {
        behind_replica.node.raft().trigger().elect().await.expect("stands");
    }
    behind_replica
        .node
        .raft()
        .wait(Some(TIMEOUT))
        .metrics(|m| m.current_term >= term + 3, "three elections stood alone")
        .await
        .expect("its term rose");

    // `ahead` comes back at a lower term with the longer log: it, and only it, can win.
    let ahead_replica =
        Replica::start(ahead, dirs[index(ahead)].path(), TcpListener::bind(ahead_addr).await.expect("rebind")).await;
    assert!(ahead_replica.node.term() < behind_replica.node.term(), "the terms parted");
    assert_eq!(leader_seen_by(&behind_replica.node, None).await, ahead, "the longer log leads");
    let both = [&ahead_replica, &behind_replica];
    write(&both, "k10", "v10").await;
    assert_eq!(converged(&ahead_replica.node, &both).await, expected(0..11));
    ahead_replica.stop().await;
    behind_replica.stop().await;
}

/// Builds a snapshot of everything applied and waits until the log it covers is purged.
async fn compact(node: &Node<Kv>) {
    let applied = node.state().last_applied_index();
    node.raft().trigger().snapshot().await.expect("snapshot triggered");
    node.raft()
        .wait(Some(TIMEOUT))
        .metrics(
            |m| m.snapshot.map(|s| s.index) >= applied && m.purged.map(|p| p.index) >= applied,
            "snapshot built and log purged",
        )
        .await
        .expect("snapshot and purge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_recovers_from_its_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = Replica::alone(dir.path()).await;
    for i in 0..5 {
        write(&[&replica], &format!("k{i}"), &format!("v{i}")).await;
    }
    compact(&replica.node).await;
    for i in 5..8 {
        write(&[&replica], &format!("k{i}"), &format!("v{i}")).await;
    }
    let applied = replica.node.state().last_applied_index();
    let snapshot = replica.node.raft().metrics().borrow().snapshot;
    assert!(snapshot.map(|s| s.index) < applied, "entries after the snapshot are only in the log");

    let addr = replica.stop().await;
    let restarted = Replica::start(1, dir.path(), TcpListener::bind(addr).await.expect("rebind")).await;

    // Rebuilt before the node starts: the snapshot, then the committed entries after it.
    assert_eq!(restarted.node.read(Kv::clone), expected(0..8));
    assert_eq!(restarted.node.state().last_applied_index(), applied);
    restarted
        .node
        .raft()
        .wait(Some(TIMEOUT))
        .metrics(|m| m.snapshot == snapshot, "the restarted replica reports its snapshot")
        .await
        .expect("the snapshot survived the restart");
    write(&[&restarted], "k8", "v8").await;
    assert_eq!(restarted.node.read(Kv::clone), expected(0..9));
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_each_gets_its_own_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = Replica::alone(dir.path()).await;
    leader_seen_by(&replica.node, None).await;
    let node = &replica.node;
    let set = |i: u32, value: &str| Set { key: format!("k{i}"), value: format!("{value}{i}") };

    const WRITES: u32 = 200;
    let firsts = futures::future::join_all((0..WRITES).map(|i| node.write(set(i, "old")))).await;
    assert!(firsts.iter().all(|answer| matches!(answer, Ok(None))), "new keys had no value: {firsts:?}");
    let before = node.state().last_applied_index().expect("entries applied");
    let seconds = futures::future::join_all((0..WRITES).map(|i| node.write(set(i, "new")))).await;
    for (i, answer) in (0..WRITES).zip(seconds) {
        assert_eq!(answer.expect("written"), Some(format!("old{i}")), "write {i} got another write's answer");
    }
    let entries = node.state().last_applied_index().expect("entries applied") - before;
    assert!(entries < u64::from(WRITES), "{WRITES} concurrent writes took {entries} log entries: none shared");
    assert_eq!(node.read(Kv::clone), Kv((0..WRITES).map(|i| (format!("k{i}"), format!("new{i}"))).collect()));

    // And they survive a restart like any other entries.
    let addr = replica.stop().await;
    let restarted = Replica::start(1, dir.path(), TcpListener::bind(addr).await.expect("rebind")).await;
    assert_eq!(restarted.node.read(Kv::clone).0.len(), WRITES as usize);
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_grown_past_the_snapshot_size_is_snapshotted_whatever_its_entry_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Entries are never counted here (`snapshot_every_entries: None`).
    let config = Config { snapshot_after_bytes: Some(4_000), ..config() };
    let node = Node::<Kv>::start(1, dir.path(), &config).await.expect("replica starts");
    node.initialize(BTreeMap::from([(1, BasicNode::new("127.0.0.1:1"))])).await.expect("a group of one");
    leader_seen_by(&node, None).await;
    node.write(Set { key: "small".to_owned(), value: "x".to_owned() }).await.expect("written");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(node.raft().metrics().borrow().snapshot, None, "a small log is not snapshotted");
    for i in 0..20 {
        node.write(Set { key: format!("k{i}"), value: "x".repeat(300) }).await.expect("written");
    }
    node.raft()
        .wait(Some(TIMEOUT))
        .metrics(|m| m.snapshot.is_some(), "a snapshot once the log outgrew its size")
        .await
        .expect("snapshotted by size");
    node.shutdown().await.expect("stopped");
}
