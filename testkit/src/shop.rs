//! The whole shop as real processes on loopback: the execution side
//! ([`super::processes`]), the three verification services and the web server,
//! each gRPC service with a metrics port of its own, all with the same
//! environment (an OTLP endpoint, `LOG_FORMAT=json`, …). What `make run` starts,
//! on free ports, for the tests that watch the shop from outside: its traces,
//! its metrics, its logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::probe::eventually;
use crate::processes::{free_port, service_process, url, ExecutionSide, Process, Setup};

/// Where the two binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub services: PathBuf,
    pub server: PathBuf,
}

impl Binaries {
    /// The web server at `server` (a test's `env!("CARGO_BIN_EXE_server")`) and
    /// the `services` binary beside it, which `cargo test --workspace` (and so
    /// `make test`) builds too; `cargo build -p services` builds it alone.
    pub fn beside(server: &Path) -> Self {
        let services = server.with_file_name("services");
        assert!(
            services.is_file(),
            "{} is missing: build it (`cargo build -p services`; `make test` does)",
            services.display()
        );
        Self { services, server: server.to_owned() }
    }

    /// The built page's folder, beside the binaries' (`target/site`); the web
    /// server answers the API without it.
    fn site(&self) -> PathBuf {
        self.server
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("target/site"), |target| target.join("site"))
    }
}

/// One of the processes and where it serves its metrics.
pub struct Observed {
    /// The process as its traces name it (`fraud_detection`, `books_db-2`).
    pub name: String,
    pub process: Process,
    pub metrics_port: u16,
}

pub struct Shop {
    pub side: ExecutionSide,
    pub verifiers: Vec<Observed>,
    pub web: Process,
    web_port: u16,
    logs: PathBuf,
}

impl Shop {
    /// Starts every process with `env`, keeping data and logs under `dir`; the
    /// executors too if `executors` (else `side.executors.start_all()` does, so
    /// orders can wait in the queue first).
    pub fn start(binaries: &Binaries, dir: &Path, env: &[(String, String)], executors: bool) -> Self {
        Self::set_up(binaries, dir, &Setup { env: env.to_vec(), ..Setup::default() }, executors)
    }

    /// [`Shop::start`], the execution side as `setup` says (its environment is
    /// every process's).
    pub fn set_up(binaries: &Binaries, dir: &Path, setup: &Setup, executors: bool) -> Self {
        let env = setup.env.as_slice();
        let mut side = ExecutionSide::set_up(&binaries.services, dir, setup);
        if executors {
            side.executors.start_all();
        }
        let books_db = side.books_db.urls().join(",");
        let verifier = |name: &str, extra: Vec<String>| {
            let port = free_port();
            let mut args = vec![name.replace('_', "-"), format!("--listen=127.0.0.1:{port}")];
            args.extend(extra);
            let (mut process, metrics_port) = service_process(&binaries.services, name, args, dir, env);
            process.restart();
            (Observed { name: name.to_owned(), process, metrics_port }, port)
        };
        let (transaction_verification, tv_port) =
            verifier("transaction_verification", vec![format!("--books-db={books_db}")]);
        let (fraud_detection, fd_port) = verifier("fraud_detection", Vec::new());
        let (suggestions, sg_port) = verifier("suggestions", Vec::new());
        let web_port = free_port();
        let executors = side.executors.urls().join(",");
        let mut web_env = vec![
            ("LEPTOS_SITE_ADDR".to_owned(), format!("127.0.0.1:{web_port}")),
            ("LEPTOS_SITE_ROOT".to_owned(), binaries.site().display().to_string()),
            ("TRANSACTION_VERIFICATION_URL".to_owned(), url(tv_port)),
            ("FRAUD_DETECTION_URL".to_owned(), url(fd_port)),
            ("SUGGESTIONS_URL".to_owned(), url(sg_port)),
            ("ORDER_QUEUE_URL".to_owned(), side.queue_url()),
            ("ORDER_EXECUTOR_URLS".to_owned(), executors),
            ("BOOKS_DB_URLS".to_owned(), books_db),
        ];
        web_env.extend_from_slice(env);
        let mut web = Process::stopped(&binaries.server, "web", Vec::new(), dir).with_env(&web_env);
        web.restart();
        Self {
            side,
            verifiers: vec![transaction_verification, fraud_detection, suggestions],
            web,
            web_port,
            logs: dir.to_owned(),
        }
    }

    /// The web server's address (`http://127.0.0.1:<port>`).
    pub fn web_url(&self) -> String {
        url(self.web_port)
    }

    /// Every process's name and the URL its metrics are served at (the web
    /// server's on its own port).
    pub fn metrics_urls(&self) -> Vec<(String, String)> {
        let mut urls = vec![("web".to_owned(), self.web_url())];
        urls.extend(self.verifiers.iter().map(|observed| (observed.name.clone(), url(observed.metrics_port))));
        urls.extend(self.side.metrics_urls());
        urls
    }

    /// Waits until the web server is ready (every service a checkout calls
    /// answers: `GET /readyz`) and so is what those call in turn: books_db has a
    /// leader that answers a stock read (the first one loads the catalog's stock
    /// through the log), so the first checkout does not wait out an election or
    /// that first write past its deadline on a busy machine.
    pub async fn ready(&self) {
        let readyz = format!("{}/readyz", self.web_url());
        let client = reqwest::Client::new();
        let what = format!("the shop ready (logs in {})", self.logs.display());
        eventually(what, Duration::from_millis(50), || async {
            let answer = client.get(&readyz).send().await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
        let urls = self.side.books_db.urls();
        let what = format!("books_db's stock read through its leader (logs in {})", self.logs.display());
        eventually(what, Duration::from_millis(50), || async {
            for url in &urls {
                let Ok(mut books) = proto::v1::books_db_client::BooksDbClient::connect(url.clone()).await else {
                    continue;
                };
                let read = proto::v1::StockRequest { book_ids: Vec::new(), local: false };
                if books.stock(read).await.is_ok_and(|answer| !answer.into_inner().books.is_empty()) {
                    return Some(());
                }
            }
            None
        })
        .await
    }
}
