//! Single services in-process on loopback port 0, each until its [`Running`] is
//! stopped (graceful: the port then refuses connections) or dropped, each with
//! a metrics registry of its own (not served: the process tests scrape); a stand-in
//! that accepts connections and never answers (a hung service); and a stock source
//! that slows every other read, so the checkout's two chains really race.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use domain::Catalog;
use futures::future::BoxFuture;
use platform::card_token::FingerprintKey;
use platform::metrics::Registry;
use services::fraud_detection::FraudConfig;
use services::order_queue::QueueConfig;
use services::transaction_verification::stock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running service: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        crate::url(&self.addr)
    }

    /// Leaves the service running until the test process ends; its URL.
    pub fn detach(self) -> String {
        let url = self.url();
        std::mem::forget(self);
        url
    }

    /// Graceful shutdown; afterwards the port refuses connections.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}

/// A loopback port of its own.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// Runs `run` (a server listening at `addr`) until the `Running` is stopped or
/// dropped: `run` gets the future that resolves then.
pub fn spawn<F, Fut>(addr: SocketAddr, run: F) -> Running
where
    F: FnOnce(BoxFuture<'static, ()>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown: BoxFuture<'static, ()> = Box::pin(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(run(shutdown));
    Running { addr, stop: Some(stop), task }
}

/// Runs `serve` on a loopback port of its own (see [`spawn`]).
async fn serve_on<F, Fut>(serve: F) -> Running
where
    F: FnOnce(TcpListener, BoxFuture<'static, ()>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = listener().await;
    spawn(addr, move |shutdown| serve(listener, shutdown))
}

/// Stock that takes 5 ms to read on every other call: event a (and so c after it)
/// then ends after d on one checkout in two, and the two chains really race.
struct RacingStock {
    inner: Arc<dyn stock::StockSource>,
    reads: std::sync::atomic::AtomicU64,
}

impl stock::StockSource for RacingStock {
    fn available<'a>(&'a self, book_ids: &'a [String]) -> stock::StockFuture<'a> {
        let slow = self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1;
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.inner.available(book_ids).await
        })
    }
}

/// transaction_verification, reading stock from `books_db` (or, if empty, the
/// catalog); `racing` slows every other read ([`RacingStock`]).
pub async fn start_transaction_verification(books_db: Vec<String>, racing: bool) -> Running {
    let catalog = Arc::new(Catalog::embedded());
    serve_on(move |listener, shutdown| async move {
        let mut stock = stock::source(&catalog, &books_db).expect("books_db urls");
        if racing {
            stock = Arc::new(RacingStock { inner: stock, reads: Default::default() });
        }
        services::transaction_verification::serve(listener, catalog, stock, &Registry::default(), shutdown)
            .await
            .expect("transaction_verification runs");
    })
    .await
}

pub async fn start_fraud_detection(config: FraudConfig) -> Running {
    serve_on(move |listener, shutdown| async move {
        services::fraud_detection::serve(
            listener,
            Arc::new(Catalog::embedded()),
            config,
            &Registry::default(),
            shutdown,
        )
        .await
        .expect("fraud_detection runs");
    })
    .await
}

pub async fn start_suggestions() -> Running {
    serve_on(move |listener, shutdown| async move {
        services::suggestions::serve(listener, Arc::new(Catalog::embedded()), 3, &Registry::default(), shutdown)
            .await
            .expect("suggestions runs");
    })
    .await
}

pub async fn start_order_queue(data_dir: PathBuf) -> Running {
    let store = services::order_queue::open(&data_dir.join("queue.redb")).expect("open the queue");
    serve_on(move |listener, shutdown| async move {
        services::order_queue::serve(listener, store, QueueConfig::default(), &Registry::default(), shutdown)
            .await
            .expect("order_queue runs");
    })
    .await
}

/// payment, with its ledger at `ledger`.
pub async fn start_payment(ledger: &Path, key: FingerprintKey) -> Running {
    let ledger = services::payment::open(ledger).expect("open the ledger");
    serve_on(move |listener, shutdown| async move {
        services::payment::serve(listener, ledger, &key, services::retention::DEFAULT, &Registry::default(), shutdown)
            .await
            .expect("payment runs");
    })
    .await
}

/// A port that accepts connections and never answers: a hung service.
pub async fn start_hung_service() -> Running {
    serve_on(move |listener, shutdown| async move {
        let mut held = Vec::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => if let Ok((socket, _)) = accepted { held.push(socket) },
                () = &mut shutdown => break,
            }
        }
    })
    .await
}
