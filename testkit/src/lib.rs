//! Test support for the integration tests and benches of the services and the web
//! server (a dev-dependency only; nothing here ships): replicated groups of three
//! replicas on loopback port 0, each with its own data directory under a folder the
//! caller owns, which can be stopped and restarted on the same port and data;
//! single services on loopback ([`service`]); the seed's order ([`seed`]);
//! [`processes`], the execution side as real processes instead, to kill them;
//! and [`shop`], the whole shop as processes, to watch from outside.

pub mod probe;
pub mod processes;
pub mod seed;
pub mod service;
pub mod shop;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;

/// Starts one replica: (id, listener, members id → URL, data dir, shutdown).
pub type Starter = Arc<
    dyn Fn(u64, TcpListener, BTreeMap<u64, String>, PathBuf, BoxFuture<'static, ()>) -> BoxFuture<'static, ()>
        + Send
        + Sync,
>;

pub struct Group {
    pub addrs: BTreeMap<u64, SocketAddr>,
    dir: PathBuf,
    replicas: BTreeMap<u64, service::Running>,
    starter: Starter,
}

pub fn url(addr: &SocketAddr) -> String {
    format!("http://{addr}")
}

impl Group {
    /// Starts three replicas keeping their data under `dir`.
    pub async fn start(dir: PathBuf, starter: Starter) -> Self {
        let mut listeners = BTreeMap::new();
        for id in 1..=3u64 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let addrs = listeners.iter().map(|(id, l)| (*id, l.local_addr().expect("address"))).collect();
        let mut group = Group { addrs, dir, replicas: BTreeMap::new(), starter };
        for (id, listener) in listeners {
            group.spawn(id, listener);
        }
        group
    }

    pub fn urls(&self) -> Vec<String> {
        self.addrs.values().map(url).collect()
    }

    pub fn id_of(&self, replica_url: &str) -> u64 {
        *self.addrs.iter().find(|(_, addr)| url(addr) == replica_url).expect("a replica of this group").0
    }

    pub fn running(&self) -> impl Iterator<Item = u64> + '_ {
        self.replicas.keys().copied()
    }

    fn spawn(&mut self, id: u64, listener: TcpListener) {
        let members = self.addrs.iter().map(|(id, addr)| (*id, url(addr))).collect();
        let dir = self.dir.join(id.to_string());
        let starter = Arc::clone(&self.starter);
        let replica = service::spawn(self.addrs[&id], move |shutdown| starter(id, listener, members, dir, shutdown));
        self.replicas.insert(id, replica);
    }

    /// Stops replica `id` (its port then refuses connections).
    pub async fn stop(&mut self, id: u64) {
        let mut replica = self.replicas.remove(&id).expect("running");
        if let Some(stop) = replica.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), replica.task).await.expect("stops in time").expect("cleanly");
    }

    /// Starts replica `id` again, on its old port and data.
    pub async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(self.addrs[&id]).await.expect("the old port is free again");
        self.spawn(id, listener);
    }
}

/// A books_db group keeping its data under `dir`.
pub async fn books_db(dir: PathBuf) -> Group {
    Group::start(
        dir,
        Arc::new(|id, listener, members, dir, shutdown| {
            Box::pin(async move {
                let catalog = Arc::new(domain::Catalog::embedded());
                let config = services::books_db::raft_config();
                let metrics = platform::metrics::Registry::default();
                services::books_db::start(
                    id,
                    listener,
                    members,
                    &dir,
                    catalog,
                    &config,
                    services::retention::DEFAULT,
                    &metrics,
                    shutdown,
                )
                .await
                .expect("books_db runs");
            })
        }),
    )
    .await
}

/// An order_executor group working against `queue`, `payment` and `books_db`,
/// keeping its data under `dir`; orders are leased for `lease`.
pub async fn order_executors(
    dir: PathBuf,
    queue: String,
    payment: String,
    books_db: Vec<String>,
    lease: Duration,
) -> Group {
    order_executors_with(dir, queue, payment, books_db, move |config| config.lease = lease).await
}

/// [`order_executors`], with `configure` changing the defaults of each replica's
/// configuration.
pub async fn order_executors_with(
    dir: PathBuf,
    queue: String,
    payment: String,
    books_db: Vec<String>,
    configure: impl Fn(&mut services::order_executor::replica::ExecutorConfig) + Send + Sync + 'static,
) -> Group {
    Group::start(
        dir,
        Arc::new(move |id, listener, members, dir, shutdown| {
            let mut config = services::order_executor::replica::ExecutorConfig::new(
                queue.clone(),
                payment.clone(),
                books_db.clone(),
            );
            configure(&mut config);
            Box::pin(async move {
                let metrics = platform::metrics::Registry::default();
                services::order_executor::replica::start(id, listener, members, &dir, config, &metrics, shutdown)
                    .await
                    .expect("order_executor runs");
            })
        }),
    )
    .await
}
