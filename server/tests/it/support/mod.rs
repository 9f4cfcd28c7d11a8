//! A whole checkout stack on loopback for the integration tests: the four gRPC
//! services and the web server, each on port 0, started for real in this process.
//! Services can be stopped (graceful shutdown, so their port refuses connections)
//! or replaced by a listener that accepts connections and never answers.

#![allow(dead_code, unused_imports)] // the benchmarks use only part of it

pub mod browser;
pub mod otlp;
pub mod prometheus;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::Catalog;
use proto::v1 as pb;
use serde_json::Value;
use server::config::{Config, ServiceUrls};
use server::startup::Application;
use services::fraud_detection::FraudConfig;
use services::order_queue::QueueConfig;
use services::transaction_verification::stock;
pub use testkit::service::{
    self, start_fraud_detection, start_hung_service, start_order_queue, start_payment, start_suggestions,
    start_transaction_verification, Running,
};

/// The replicated part of the shop, when the stack runs it.
pub struct Execution {
    pub books_db: testkit::Group,
    pub executors: testkit::Group,
    pub payment: String,
}

pub struct Stack {
    pub web: Running,
    pub execution: Option<Execution>,
    pub transaction_verification: Option<Running>,
    pub fraud_detection: Option<Running>,
    pub suggestions: Option<Running>,
    pub order_queue: Option<Running>,
    pub queue_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

#[derive(Default)]
pub struct StackOptions {
    pub fraud: FraudConfig,
    /// The built page assets to serve (for the browser tests).
    pub site_root: Option<String>,
    /// Put a hung listener where transaction_verification should be.
    pub hung_transaction_verification: bool,
    /// Slow every other stock read of transaction_verification by 5 ms, so that
    /// the chain a→c ends after b→d on half the checkouts.
    pub racing_chains: bool,
    /// Also run execution: books_db ×3 (transaction_verification then reads its
    /// stock), payment and order_executor ×3.
    pub execution: bool,
    /// The most checkouts the web server runs at once (its default if `None`).
    pub checkout_concurrency: Option<usize>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let queue_dir = tempfile::tempdir().expect("temp dir");
        let order_queue = start_order_queue(queue_dir.path().to_owned()).await;
        let execution = if options.execution {
            let books_db = testkit::books_db(queue_dir.path().join("books_db")).await;
            let key = platform::card_token::FingerprintKey::new(platform::card_token::DEVELOPMENT_KEY);
            let payment = start_payment(&queue_dir.path().join("payments.redb"), key).await.detach();
            let executors = testkit::order_executors(
                queue_dir.path().join("order_executor"),
                order_queue.url(),
                payment.clone(),
                books_db.urls(),
                Duration::from_secs(30),
            )
            .await;
            Some(Execution { books_db, executors, payment })
        } else {
            None
        };
        let transaction_verification = if options.hung_transaction_verification {
            start_hung_service().await
        } else {
            let books_db = execution.as_ref().map(|e| e.books_db.urls()).unwrap_or_default();
            start_transaction_verification(books_db, options.racing_chains).await
        };
        let fraud_detection = start_fraud_detection(options.fraud).await;
        let suggestions = start_suggestions().await;
        let urls = ServiceUrls {
            transaction_verification: transaction_verification.url(),
            fraud_detection: fraud_detection.url(),
            suggestions: suggestions.url(),
            order_queue: order_queue.url(),
            order_executors: execution.as_ref().map(|e| e.executors.urls()).unwrap_or_default(),
            books_db: execution.as_ref().map(|e| e.books_db.urls()).unwrap_or_default(),
        };
        let mut config = Config::new("127.0.0.1:0".parse().expect("address"), urls);
        // The key payment uses too; tests may seal result links with it.
        config.card_fingerprint_key = Some(platform::card_token::DEVELOPMENT_KEY.to_owned());
        if let Some(site_root) = options.site_root {
            config.site_root = site_root;
        }
        if let Some(checkouts) = options.checkout_concurrency {
            config.checkout_concurrency = checkouts;
        }
        let app = Application::build(config).await.expect("web server builds");
        let addr = app.local_addr().expect("web address");
        let web = service::spawn(addr, move |shutdown| async move {
            let _ = app.run_until(shutdown).await;
        });
        Self {
            web,
            execution,
            transaction_verification: Some(transaction_verification),
            fraud_detection: Some(fraud_detection),
            suggestions: Some(suggestions),
            order_queue: Some(order_queue),
            queue_dir,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.web.addr)
    }

    /// A post of the checkout form as a browser without JavaScript sends it (it
    /// asks for HTML), from a client that does not follow the redirect it gets.
    pub fn checkout_form(&self) -> reqwest::RequestBuilder {
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        browser.post(self.url("/api/checkout")).header("accept", "text/html")
    }

    /// [`Stack::checkout_form`] with an urlencoded `form_body`; the answer.
    pub async fn post_checkout_form(&self, form_body: &'static str) -> reqwest::Response {
        self.checkout_form()
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body)
            .send()
            .await
            .expect("POST /api/checkout")
    }

    /// `POST /checkout`; the status and the JSON body.
    pub async fn checkout(&self, body: &Value) -> (u16, Value) {
        let response = self.http.post(self.url("/checkout")).json(body).send().await.expect("POST /checkout");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Orders cached by (transaction_verification, fraud_detection, suggestions).
    pub async fn cached_orders(&self) -> [u32; 3] {
        async fn count(service: &Option<Running>) -> u32 {
            let url = service.as_ref().expect("running").url();
            let mut cache = pb::order_cache_client::OrderCacheClient::connect(url).await.expect("connect");
            cache.cached_orders(pb::CachedOrdersRequest {}).await.expect("count").into_inner().count
        }
        let (tv, fd, sg) =
            tokio::join!(count(&self.transaction_verification), count(&self.fraud_detection), count(&self.suggestions));
        [tv, fd, sg]
    }

    pub async fn queue(&self) -> pb::order_queue_client::OrderQueueClient<tonic::transport::Channel> {
        let url = self.order_queue.as_ref().expect("queue running").url();
        pb::order_queue_client::OrderQueueClient::connect(url).await.expect("connect to the queue")
    }

    /// The next queued order, waiting up to a second for one.
    pub async fn dequeue(&self) -> Option<pb::QueuedOrder> {
        let response = self
            .queue()
            .await
            .dequeue(pb::DequeueRequest { wait_ms: 1000, lease_ms: 60_000, consumer: "test".into(), leader_term: 0 })
            .await
            .expect("dequeue")
            .into_inner();
        response.order
    }
}

/// A checkout form with one item and nothing else: refused for the missing name.
pub const ITEM_ONLY_FORM: &str = "request%5Bitems%5D%5B0%5D%5Bid%5D=4&request%5Bitems%5D%5B0%5D%5Bquantity%5D=1";

pub use testkit::seed::{expiry as future_expiry, rest_order as seed_order};

/// Sets the value at a dotted path (`creditCard.number`, `items.0.quantity`).
pub fn with(mut order: Value, path: &str, value: Value) -> Value {
    let mut target = &mut order;
    for key in path.split('.') {
        target = match key.parse::<usize>() {
            Ok(index) => &mut target[index],
            Err(_) => &mut target[key],
        };
    }
    *target = value;
    order
}

impl Stack {
    /// `GET /orders/{id}`: the status and the JSON body.
    pub async fn order_status(&self, order_id: &str) -> (u16, Value) {
        let response = self.http.get(self.url(&format!("/orders/{order_id}"))).send().await.expect("GET /orders");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Waits (bounded) until the order's status is final; its body.
    pub async fn final_status(&self, order_id: &str) -> Value {
        for _ in 0..300 {
            let (code, body) = self.order_status(order_id).await;
            if code == 200 && matches!(body["status"].as_str(), Some("committed" | "aborted")) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("order {order_id} never reached a final status");
    }
}
