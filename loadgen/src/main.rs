//! `loadgen`: load for the shop over its REST API, the way its users and the
//! course's end-to-end tests exercise it.
//!
//! ```text
//! cargo run --release -p loadgen -- --scenario good --shoppers 32 --duration 30s
//! cargo run --release -p loadgen -- --scenario mixed --rate 200 --duration 60s --html report.html
//! ```
//!
//! Closed loop (`--shoppers N`: each shopper sends, waits for the answer, sends
//! again) or open loop (`--rate R` checkouts a second, each latency measured from
//! when it was meant to be sent, so a slow server cannot hide its queueing). After
//! the run it follows every accepted order to its end (`GET /orders/{id}`) and
//! checks what it can see: every accepted order committed or aborted, the
//! contended book never oversold, fraudulent and invalid checkouts refused as they
//! must be. It exits 1 if a check failed.

mod report;
mod shopper;
mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use futures::StreamExt;
use tokio::time::Instant;

use shopper::{Book, Plan, Scenario};
use stats::{Answer, Recorder, Request};

#[derive(Debug, Clone, Parser)]
#[command(about = "Load for the shop's REST API, with latency, refusals and end-to-end checks")]
struct Args {
    /// The web server.
    #[arg(long, env = "LOADGEN_TARGET", default_value = "http://127.0.0.1:8080")]
    target: String,
    #[arg(long, value_enum, default_value = "good")]
    scenario: Scenario,
    /// Closed loop: this many shoppers, each sending as soon as answered.
    #[arg(long, default_value_t = 8, conflicts_with = "rate")]
    shoppers: usize,
    /// Open loop: this many requests a second, whatever the answers' pace.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send, e.g. 30s, 2m, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// How long to wait, after the run, for accepted orders to end.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    drain: Duration,
    /// The catalog the server runs with (for the books to buy and the contended
    /// book's stock): `data/books-load.json` has stock for load runs.
    #[arg(long, env = "CATALOG_FILE", default_value = "data/books.json")]
    catalog: PathBuf,
    /// The book `contended` races for (default: the one in stock with the fewest
    /// copies; other checkouts never buy it).
    #[arg(long)]
    book: Option<String>,
    /// Shares of fraudulent and invalid checkouts in `mixed`.
    #[arg(long, default_value_t = 0.1)]
    fraud_share: f64,
    #[arg(long, default_value_t = 0.1)]
    invalid_share: f64,
    /// The run's seed: the same seed sends the same checkouts; another seed
    /// (below 1,000) sends other shoppers and cards.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First load `/readyz` the same way for the same time: the floor the
    /// scenario's figures are compared with (the same web server and the same gRPC
    /// connections to the services, answering their health checks).
    #[arg(long)]
    floor: bool,
    /// Write the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML report with throughput and latency charts here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.trim().split_at(text.trim().find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("{text:?}: the unit is ms, s or m")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The open loop's bound on requests waiting for an answer; beyond it a request is
/// counted as failed (the client, not the server, would be the limit).
const MAX_IN_FLIGHT: u64 = 20_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        bail!("--rate: must be a number of requests a second above zero");
    }
    if !(0.0..=1.0).contains(&(args.fraud_share + args.invalid_share))
        || args.fraud_share < 0.0
        || args.invalid_share < 0.0
    {
        bail!("--fraud-share and --invalid-share: each at least 0, together at most 1");
    }
    let plan = plan(&args)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .context("building the HTTP client")?;
    let shop = Shop { client, target: args.target.trim_end_matches('/').to_owned() };
    shop.health().await.with_context(|| format!("the shop at {} does not answer /healthz", shop.target))?;

    let floor = match args.floor {
        true => Some(run(&args, &shop, &plan, Load::Health, "floor: /readyz").await),
        false => None,
    };
    let load = match args.scenario {
        Scenario::Browse => Load::Browse(shop.seed_orders(&plan).await?),
        _ => Load::Checkouts,
    };
    let recorder = run(&args, &shop, &plan, load, &format!("{:?}", args.scenario).to_lowercase()).await;
    let ends = report::follow(&shop, &recorder, args.drain, args.quiet).await;
    let summary = report::Summary::new(&args_view(&args), &plan, &recorder, floor.as_ref(), &ends);
    print!("{}", summary.text());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html(&summary, &recorder, floor.as_ref()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if summary.checks.iter().any(|check| !check.passed) {
        std::process::exit(1);
    }
    Ok(())
}

fn args_view(args: &Args) -> report::RunArgs {
    report::RunArgs {
        target: args.target.clone(),
        scenario: args.scenario,
        shoppers: args.rate.is_none().then_some(args.shoppers),
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        seed: args.seed,
    }
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(&args.catalog)
        .with_context(|| format!("reading the catalog {} (--catalog)", args.catalog.display()))?;
    let books: Vec<Book> =
        serde_json::from_str(&text).with_context(|| format!("{} is not a catalog", args.catalog.display()))?;
    let contended = match &args.book {
        Some(id) => books.iter().find(|book| &book.id == id).with_context(|| format!("--book: no book {id}"))?,
        None => books
            .iter()
            .filter(|book| book.stock > 0)
            .min_by_key(|book| book.stock)
            .context("the catalog has no book in stock")?,
    }
    .clone();
    // Good checkouts leave the contended book alone, and books out of stock.
    let books: Vec<Book> = books.into_iter().filter(|book| book.stock > 0 && book.id != contended.id).collect();
    if books.is_empty() {
        bail!("the catalog has no book in stock besides the contended one");
    }
    Ok(Plan {
        scenario: args.scenario,
        seed: args.seed,
        fraud_share: args.fraud_share,
        invalid_share: args.invalid_share,
        books,
        contended,
    })
}

/// The shop, over HTTP.
pub struct Shop {
    client: reqwest::Client,
    target: String,
}

impl Shop {
    async fn health(&self) -> anyhow::Result<()> {
        self.client.get(format!("{}/healthz", self.target)).send().await?.error_for_status()?;
        Ok(())
    }

    /// Sends one request; answers how it went.
    async fn send(&self, request: &Request, body: Option<&serde_json::Value>, order_id: Option<&str>) -> Answer {
        let call = match request {
            Request::Checkout => {
                self.client.post(format!("{}/checkout", self.target)).json(body.unwrap_or(&serde_json::Value::Null))
            }
            Request::Page => self.client.get(format!("{}/", self.target)).header("accept", "text/html"),
            Request::OrderStatus => self
                .client
                .get(format!("{}/orders/{}", self.target, order_id.unwrap_or_default()))
                .header("accept", "application/json"),
            Request::Health => self.client.get(format!("{}/readyz", self.target)),
        };
        let response = match call.send().await {
            Ok(response) => response,
            Err(error) => return Answer::Failed(failure(&error)),
        };
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => return Answer::Failed(failure(&error)),
        };
        if !(200..300).contains(&status) {
            let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let text = |key: &str| error["error"][key].as_str().unwrap_or("?").to_owned();
            return Answer::Refused { status, step: text("step"), code: text("code") };
        }
        if *request != Request::Checkout {
            return Answer::Ok;
        }
        let accepted: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match accepted["orderId"].as_str() {
            Some(order_id) => Answer::Accepted(order_id.to_owned()),
            None => Answer::Failed("a 2xx checkout answer without an orderId".to_owned()),
        }
    }

    /// The order's status, as `GET /orders/{id}` answers it.
    async fn order_status(&self, order_id: &str) -> Option<domain::OrderStatus> {
        let response = self
            .client
            .get(format!("{}/orders/{order_id}", self.target))
            .header("accept", "application/json")
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// For `browse`: a few orders to read the status of.
    async fn seed_orders(&self, plan: &Plan) -> anyhow::Result<Vec<String>> {
        let good = Plan { scenario: Scenario::Good, ..plan.clone() };
        let mut ids = Vec::new();
        for n in 0..5 {
            let checkout = good.checkout(u64::MAX / 2 + n);
            if let Answer::Accepted(id) = self.send(&Request::Checkout, Some(&checkout.body), None).await {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            bail!("browse needs a few orders to read, and no checkout was accepted");
        }
        Ok(ids)
    }
}

fn failure(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    }
}

/// What a run sends.
#[derive(Debug, Clone)]
enum Load {
    Checkouts,
    /// Pages and the status of these orders, in turn.
    Browse(Vec<String>),
    Health,
}

/// Sends `load` for the run's duration, closed or open loop; answers what it saw.
async fn run(args: &Args, shop: &Shop, plan: &Plan, load: Load, title: &str) -> Recorder {
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let start = Instant::now();
    let end = start + args.duration;
    let progress = report::Progress::start(title, args.duration, Arc::clone(&recorder), args.quiet);
    let load = &load;
    let one = |n: u64, sent_at: Instant| {
        let recorder = Arc::clone(&recorder);
        async move {
            let (request, intent, body, order_id) = match load {
                Load::Checkouts => {
                    let checkout = plan.checkout(n);
                    (Request::Checkout, Some(checkout.intent), Some(checkout.body), None)
                }
                Load::Browse(_) if n.is_multiple_of(2) => (Request::Page, None, None, None),
                Load::Browse(ids) => {
                    (Request::OrderStatus, None, None, Some(ids[(n / 2) as usize % ids.len()].clone()))
                }
                Load::Health => (Request::Health, None, None, None),
            };
            let answer = shop.send(&request, body.as_ref(), order_id.as_deref()).await;
            let latency = sent_at.elapsed();
            let at = sent_at.saturating_duration_since(start);
            recorder.lock().unwrap_or_else(PoisonError::into_inner).record(request, intent, at, latency, answer);
        }
    };
    match args.rate {
        None => {
            let next = AtomicU64::new(0);
            let shoppers = (0..args.shoppers.max(1)).map(|_| async {
                while Instant::now() < end {
                    one(next.fetch_add(1, Ordering::Relaxed), Instant::now()).await;
                }
            });
            futures::future::join_all(shoppers).await;
        }
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate);
            let in_flight = Arc::new(AtomicU64::new(0));
            let mut sending = futures::stream::FuturesUnordered::new();
            let mut n = 0u64;
            loop {
                let intended = start + interval.mul_f64(n as f64);
                if intended >= end {
                    break;
                }
                // Answers are collected while waiting for the next send time.
                let wait = tokio::time::sleep_until(intended);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = &mut wait => break,
                        Some(()) = sending.next(), if !sending.is_empty() => {}
                    }
                }
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    let at = intended.saturating_duration_since(start);
                    let answer = Answer::Failed("the load generator's limit of requests in flight".to_owned());
                    recorder.lock().unwrap_or_else(PoisonError::into_inner).record(
                        Request::Checkout,
                        None,
                        at,
                        Duration::ZERO,
                        answer,
                    );
                } else {
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let in_flight = Arc::clone(&in_flight);
                    let request = one(n, intended);
                    sending.push(async move {
                        request.await;
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                n += 1;
            }
            while sending.next().await.is_some() {}
        }
    }
    progress.finish();
    Arc::try_unwrap(recorder).map_or_else(
        |shared| std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner)),
        |recorder| recorder.into_inner().unwrap_or_else(PoisonError::into_inner),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
