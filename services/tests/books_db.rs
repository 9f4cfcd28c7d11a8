//! The books database as a three-replica Raft group over real gRPC on loopback:
//! two-phase-commit participant semantics, identical stock on every replica, and
//! the group surviving the loss of its leader.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::Catalog;
use proto::v1 as pb;
use proto::v1::books_db_client::BooksDbClient;
use services::books_db;
use services::leader_client::LeaderClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Replica {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

struct Group {
    addrs: BTreeMap<u64, SocketAddr>,
    dirs: tempfile::TempDir,
    replicas: BTreeMap<u64, Replica>,
    client: LeaderClient,
}

fn url(addr: &SocketAddr) -> String {
    format!("http://{addr}")
}

impl Group {
    async fn start() -> Self {
        let mut listeners = BTreeMap::new();
        for id in 1..=3u64 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(id, listener);
        }
        let addrs: BTreeMap<u64, SocketAddr> = listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
        let urls: Vec<String> = addrs.values().map(url).collect();
        let mut group = Group {
            addrs,
            dirs: tempfile::tempdir().unwrap(),
            replicas: BTreeMap::new(),
            client: LeaderClient::new(&urls, Duration::from_millis(500)).unwrap(),
        };
        for (id, listener) in listeners {
            group.spawn(id, listener);
        }
        group
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.dirs.path().join(id.to_string())
    }

    fn spawn(&mut self, id: u64, listener: TcpListener) {
        let members: BTreeMap<u64, String> = self.addrs.iter().map(|(id, addr)| (*id, url(addr))).collect();
        let dir = self.dir(id);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let config = books_db::raft_config();
            books_db::start(id, listener, members, &dir, Arc::new(Catalog::embedded()), &config, shutdown)
                .await
                .expect("replica runs");
        });
        self.replicas.insert(id, Replica { stop, task });
    }

    async fn stop(&mut self, id: u64) {
        let replica = self.replicas.remove(&id).expect("running");
        let _ = replica.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), replica.task).await.expect("stops").expect("cleanly");
    }

    async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(self.addrs[&id]).await.expect("the old port is free again");
        self.spawn(id, listener);
    }

    async fn prepare(&self, order_id: &str, book_id: &str, quantity: u32) -> pb::BooksVote {
        self.client
            .call(|channel| async move {
                let lines = vec![pb::OrderLine { book_id: book_id.into(), quantity }];
                BooksDbClient::new(channel).prepare(pb::BooksPrepareRequest { order_id: order_id.into(), lines }).await
            })
            .await
            .expect("prepare answered")
            .into_inner()
    }

    async fn decide(&self, order_id: &str, commit: bool) -> Result<String, tonic::Status> {
        self.client
            .call(|channel| async move {
                let mut client = BooksDbClient::new(channel);
                let decision = pb::BooksDecision { order_id: order_id.into() };
                if commit { client.commit(decision).await } else { client.abort(decision).await }
            })
            .await
            .map(|ack| ack.into_inner().outcome)
    }

    /// Stock as replica `id` itself sees it.
    async fn local_stock(&self, id: u64) -> Vec<pb::BookStock> {
        let mut client = BooksDbClient::connect(url(&self.addrs[&id])).await.expect("connect");
        client.stock(pb::StockRequest { book_ids: vec![], local: true }).await.expect("stock").into_inner().books
    }

    /// Waits (bounded) until every running replica shows the same stock as `id`.
    async fn converged(&self, reference: Vec<pb::BookStock>) {
        for _ in 0..300 {
            let mut all = true;
            for id in self.replicas.keys() {
                all &= self.local_stock(*id).await == reference;
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replicas did not converge to the leader's stock");
    }

    /// Waits (bounded) for a leader with the catalog loaded, returning its stock.
    async fn ready(&self) -> Vec<pb::BookStock> {
        for _ in 0..300 {
            let stock = self
                .client
                .call(|channel| async move {
                    BooksDbClient::new(channel).stock(pb::StockRequest { book_ids: vec![], local: false }).await
                })
                .await;
            if let Ok(stock) = stock {
                if !stock.get_ref().books.is_empty() {
                    return stock.into_inner().books;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the group never elected a leader with the catalog loaded");
    }
}

fn available(stock: &[pb::BookStock], book_id: &str) -> u32 {
    stock.iter().find(|b| b.book_id == book_id).map_or(0, |b| b.available)
}

#[tokio::test]
async fn prepares_commits_and_aborts_identically_on_every_replica() {
    let group = Group::start().await;
    let initial = group.ready().await;
    assert_eq!(available(&initial, "20"), 3, "Six of Crows starts at 3");

    assert!(group.prepare("o1", "20", 2).await.yes);
    let refused = group.prepare("o2", "20", 2).await;
    assert_eq!((refused.yes, refused.reason.as_str()), (false, "only 1 copy of Six of Crows left"));
    assert!(group.prepare("o1", "20", 2).await.yes, "prepare is idempotent");
    assert_eq!(group.decide("o1", true).await.unwrap(), "committed");
    assert_eq!(group.decide("o1", true).await.unwrap(), "committed", "commit is idempotent");
    assert_eq!(group.decide("o2", false).await.unwrap(), "aborted");
    assert_eq!(group.decide("o1", false).await.unwrap_err().code(), tonic::Code::FailedPrecondition);

    let leader_view = group.ready().await;
    let six = leader_view.iter().find(|b| b.book_id == "20").unwrap();
    assert_eq!((six.available, six.reserved, six.sold, six.initial), (1, 0, 2, 3));
    group.converged(leader_view).await;
}

#[tokio::test]
async fn losing_the_leader_keeps_the_group_working_and_the_old_leader_catches_up() {
    let mut group = Group::start().await;
    group.ready().await;
    assert!(group.prepare("before", "4", 1).await.yes);
    let leader_url = group.client.current().to_owned();
    let leader = *group.addrs.iter().find(|(_, addr)| url(addr) == leader_url).expect("a known replica").0;
    group.stop(leader).await;

    // The next prepare finds the new leader by itself.
    assert!(group.prepare("after", "4", 2).await.yes);
    assert_eq!(group.decide("before", true).await.unwrap(), "committed");
    assert_eq!(group.decide("after", true).await.unwrap(), "committed");

    group.restart(leader).await;
    let leader_view = group.ready().await;
    assert_eq!(available(&leader_view, "4"), 60 - 3);
    group.converged(leader_view).await;
}
