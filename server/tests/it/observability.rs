//! The shop watched from outside, the way an operator watches it: every process
//! real (`testkit::shop`), spans and log records exported to a real OTLP
//! receiver (`support::otlp`), metrics scraped by Debian's Prometheus
//! (`support::prometheus`), log lines as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::Value;
use testkit::probe::eventually;
use testkit::processes::Signal;
use testkit::seed;
use testkit::shop::{Binaries, Shop};

use crate::support::otlp::{self, Received};
use crate::support::prometheus::{promtool_check, Prometheus};
use crate::support::with;

fn binaries() -> Binaries {
    Binaries::beside(Path::new(env!("CARGO_BIN_EXE_server")))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// Every process exports to `endpoint`, in small batches soon after a span ends.
fn traced(endpoint: &str) -> Vec<(String, String)> {
    env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("LOG_FORMAT", "json"),
    ])
}

/// `POST /checkout`: the status, the answer, and the trace id the web server
/// names in its `traceresponse` header, if any.
async fn checkout(http: &reqwest::Client, shop: &Shop, order: &Value) -> (u16, Value, Option<String>) {
    checkout_from(http.post(format!("{}/checkout", shop.web_url())).json(order)).await
}

/// [`checkout`], as `request` sends it.
async fn checkout_from(request: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
    let answer = request.send().await.expect("the web server answers");
    let trace_id = answer.headers().get("traceresponse").map(|value| {
        let value = value.to_str().expect("a text header");
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4, "traceresponse {value}: version-trace-span-flags");
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16), "traceresponse {value}");
        parts[1].to_owned()
    });
    (answer.status().as_u16(), answer.json().await.expect("JSON"), trace_id)
}

/// `GET /orders/{id}` as JSON, once the order is committed or aborted.
async fn final_status(http: &reqwest::Client, shop: &Shop, order_id: &str) -> Value {
    let url = format!("{}/orders/{order_id}", shop.web_url());
    eventually(format!("order {order_id} final"), Duration::from_millis(50), || async {
        let status: Value = http.get(&url).header("accept", "application/json").send().await.ok()?.json().await.ok()?;
        matches!(status["status"].as_str(), Some("committed" | "aborted")).then_some(status)
    })
    .await
}

fn kind(span: &Received) -> SpanKind {
    SpanKind::try_from(span.span.kind).unwrap_or(SpanKind::Unspecified)
}

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|span| span.span.name == name).collect()
}

/// The one span of `spans` named `name`, sent by a process whose name starts with `service`.
fn one<'a>(spans: &'a [Received], name: &str, service: &str) -> &'a Received {
    let found: Vec<&Received> =
        named(spans, name).into_iter().filter(|span| span.service.starts_with(service)).collect();
    assert_eq!(found.len(), 1, "one {name} from {service}, not {found:#?}");
    found[0]
}

/// Neither the card number, the CVV, the e-mail address nor the name appear in
/// any span, event, link, resource or log record received.
fn assert_no_shopper_data(collector: &otlp::Collector) {
    let texts = collector.every_text();
    assert!(texts.len() > 100, "the traces and logs say something: {}", texts.len());
    for secret in [seed::CARD, seed::EMAIL, seed::NAME] {
        let leaks: Vec<&String> = texts.iter().filter(|text| text.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} is in the traces: {leaks:?}");
    }
    assert!(!texts.contains(seed::CVV), "the CVV is in the traces");
    assert!(!texts.iter().any(|text| text.to_lowercase().contains("cvv")), "a CVV field is in the traces");
}

#[tokio::test]
async fn one_checkout_is_one_trace_across_every_process_and_its_log_lines_carry_its_id() {
    let (collector, receiver) = otlp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let shop = Shop::start(&binaries(), dir.path(), &traced(&receiver.url()), true);
    shop.ready().await;
    let http = reqwest::Client::new();

    // A client naming a trace of its own: the shop's trace links to it and
    // keeps its own id.
    let foreign = "0af7651916cd43dd8448eb211c80319c";
    let request = http
        .post(format!("{}/checkout", shop.web_url()))
        .header("traceparent", format!("00-{foreign}-b7ad6b7169203331-01"))
        .header("tracestate", "vendor=anything")
        .json(&seed::rest_order());
    let (status, answer, trace_id) = checkout_from(request).await;
    assert_eq!(status, 200, "{answer}");
    let trace_id = trace_id.expect("the answer names its trace");
    assert_ne!(trace_id, foreign, "the shop's trace is its own");
    let order_id = answer["orderId"].as_str().expect("an order id").to_owned();
    let order = final_status(&http, &shop, &order_id).await;
    assert_eq!(order["status"], "committed", "{order}");
    assert_eq!(order["traceId"], trace_id.as_str(), "the order's page names its trace");

    // Every process the order went through sent its part of the one trace
    // (each exports on its own schedule: wait for every span asserted below).
    let expected: &[(&str, &str)] = &[
        ("web", "POST /checkout"),
        ("web", "checkout"),
        ("web", "send orders"),
        ("transaction_verification", "bookstore.v1.TransactionVerification/VerifyItems"),
        ("transaction_verification", "bookstore.v1.TransactionVerification/VerifyUserData"),
        ("transaction_verification", "bookstore.v1.TransactionVerification/VerifyCardFormat"),
        ("fraud_detection", "bookstore.v1.FraudDetection/CheckUser"),
        ("fraud_detection", "bookstore.v1.FraudDetection/CheckCard"),
        ("suggestions", "bookstore.v1.Suggestions/Suggest"),
        ("transaction_verification", "bookstore.v1.OrderCache/ClearOrder"),
        ("fraud_detection", "bookstore.v1.OrderCache/ClearOrder"),
        ("suggestions", "bookstore.v1.OrderCache/ClearOrder"),
        ("order_queue", "bookstore.v1.OrderQueue/Enqueue"),
        ("order_queue", "bookstore.v1.OrderQueue/Ack"),
        ("books_db-", "bookstore.v1.BooksDb/Stock"),
        ("books_db-", "bookstore.v1.BooksDb/Prepare"),
        ("books_db-", "bookstore.v1.BooksDb/Commit"),
        ("payment", "bookstore.v1.Payment/Prepare"),
        ("payment", "bookstore.v1.Payment/Commit"),
        ("order_executor-", "process orders"),
        ("order_executor-", "log Complete"),
    ];
    let spans = eventually(format!("the spans of trace {trace_id}"), Duration::from_millis(100), || async {
        let spans = collector.trace(&trace_id);
        let everything = expected.iter().all(|(service, name)| {
            spans.iter().any(|span| span.service.starts_with(service) && span.span.name == *name)
        });
        everything.then_some(spans)
    })
    .await;

    // One root, the request; every other span's parent is in the trace.
    let ids: BTreeSet<String> = spans.iter().map(Received::span_id).collect();
    let roots: Vec<&Received> = spans.iter().filter(|span| span.span.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    let root = roots[0];
    assert_eq!(
        (root.service.as_str(), root.span.name.as_str(), kind(root)),
        ("web", "POST /checkout", SpanKind::Server)
    );
    assert_eq!(root.attribute(semconv::HTTP_REQUEST_METHOD).as_deref(), Some("POST"));
    assert_eq!(root.attribute(semconv::HTTP_ROUTE).as_deref(), Some("/checkout"));
    assert_eq!(root.attribute(semconv::HTTP_RESPONSE_STATUS_CODE).as_deref(), Some("200"));
    let linked: Vec<String> = root.span.links.iter().map(|link| otlp::hex(&link.trace_id)).collect();
    assert_eq!(linked, [foreign], "the client's trace is linked");
    for span in &spans {
        if !span.span.parent_span_id.is_empty() {
            assert!(
                ids.contains(&span.parent_id()),
                "the parent of {} ({}) is not in the trace",
                span.span.name,
                span.service
            );
        }
    }

    // The checkout: its span, and each step's call a server span of the service,
    // named as the RPC conventions say, whose parent is the span that made the
    // call (the checkout's; the stock read's, event a's; the enqueue's, the send).
    let checkout_span = one(&spans, "checkout", "web");
    assert_eq!(checkout_span.attribute("order.id").as_deref(), Some(order_id.as_str()));
    assert_eq!(checkout_span.attribute("checkout.outcome").as_deref(), Some("approved"));
    let send = one(&spans, "send orders", "web");
    let items = "bookstore.v1.TransactionVerification/VerifyItems";
    for (service, method, caller) in [
        ("transaction_verification", items, "checkout"),
        ("transaction_verification", "bookstore.v1.TransactionVerification/VerifyUserData", "checkout"),
        ("transaction_verification", "bookstore.v1.TransactionVerification/VerifyCardFormat", "checkout"),
        ("fraud_detection", "bookstore.v1.FraudDetection/CheckUser", "checkout"),
        ("fraud_detection", "bookstore.v1.FraudDetection/CheckCard", "checkout"),
        ("suggestions", "bookstore.v1.Suggestions/Suggest", "checkout"),
        ("order_queue", "bookstore.v1.OrderQueue/Enqueue", "send orders"),
        ("books_db-", "bookstore.v1.BooksDb/Stock", items),
    ] {
        // (A follower of books_db answers FAILED_PRECONDITION and names the
        // leader, whose answer is the one that counts.)
        let server = named(&spans, method)
            .into_iter()
            .find(|span| {
                span.service.starts_with(service)
                    && kind(span) == SpanKind::Server
                    && span.attribute(semconv::RPC_RESPONSE_STATUS_CODE).as_deref() == Some("OK")
            })
            .unwrap_or_else(|| panic!("no server span {method} from {service} answered OK"));
        assert_eq!(server.attribute(semconv::RPC_SYSTEM_NAME).as_deref(), Some("grpc"), "{method}");
        assert_eq!(server.attribute(semconv::RPC_METHOD).as_deref(), Some(method));
        let parent = spans.iter().find(|span| span.span_id() == server.parent_id()).expect("its parent");
        assert_eq!(parent.span.name, caller, "{method}'s parent");
    }
    for service in ["transaction_verification", "fraud_detection", "suggestions"] {
        for method in ["bookstore.v1.OrderCache/InitOrder", "bookstore.v1.OrderCache/ClearOrder"] {
            let server = one(&spans, method, service);
            assert_eq!(server.attribute("order.id").as_deref(), Some(order_id.as_str()), "{method} on {service}");
        }
    }

    // The queue between: the web server sends, an executor processes, as the
    // messaging conventions name them; the order's run continues the trace.
    assert_eq!(kind(send), SpanKind::Producer);
    assert_eq!(send.attribute(semconv::MESSAGING_DESTINATION_NAME).as_deref(), Some("orders"));
    assert_eq!(send.attribute(semconv::MESSAGING_OPERATION_TYPE).as_deref(), Some("send"));
    assert_eq!(send.attribute(semconv::MESSAGING_MESSAGE_ID).as_deref(), Some(order_id.as_str()));
    // (A leader elected while the shop starts may hand over mid-order: the
    // order is then run again, or recovered, by the next one, in the same trace.)
    let processes = named(&spans, "process orders");
    assert!(!processes.is_empty(), "no process span");
    for process in &processes {
        assert!(process.service.starts_with("order_executor-"), "{process:?}");
        assert_eq!(kind(process), SpanKind::Consumer);
        assert_eq!(process.parent_id(), send.span_id(), "the order's run continues its checkout");
        assert_eq!(process.attribute(semconv::MESSAGING_OPERATION_TYPE).as_deref(), Some("process"));
        assert_eq!(process.attribute("order.id").as_deref(), Some(order_id.as_str()));
    }
    let delivered = processes
        .iter()
        .find(|process| process.attribute(semconv::MESSAGING_OPERATION_NAME).as_deref() == Some("execute"))
        .expect("the order as the queue delivered it");
    assert_eq!(delivered.span.links.len(), 1, "linked to the poll that received it");
    let received = collector
        .spans()
        .into_iter()
        .find(|span| span.span.span_id == delivered.span.links[0].span_id)
        .expect("the linked receive span was exported too");
    assert_eq!((received.span.name.as_str(), kind(&received)), ("receive orders", SpanKind::Client));

    // Two-phase commit, all of it in the trace, each part a child of the order's
    // run: the log's records, both participants' prepares and commits, the ack.
    let runs: BTreeSet<String> = processes.iter().map(|process| process.span_id()).collect();
    for (service, name) in [
        ("order_executor-", "log Start"),
        ("order_executor-", "log Decide"),
        ("order_executor-", "log Complete"),
        ("books_db-", "bookstore.v1.BooksDb/Prepare"),
        ("books_db-", "bookstore.v1.BooksDb/Commit"),
        ("payment", "bookstore.v1.Payment/Prepare"),
        ("payment", "bookstore.v1.Payment/Commit"),
        ("order_queue", "bookstore.v1.OrderQueue/Ack"),
    ] {
        let parts: Vec<&Received> =
            named(&spans, name).into_iter().filter(|span| span.service.starts_with(service)).collect();
        assert!(!parts.is_empty(), "no {name} from {service} in the trace");
        assert!(parts.iter().any(|part| runs.contains(&part.parent_id())), "{name} is no child of the order's run");
    }
    assert_no_shopper_data(&collector);

    // Each process names itself; the resource says which shop it belongs to.
    let resource = &root.resource;
    assert_eq!(otlp::attribute(resource, "service.namespace").as_deref(), Some("bookstore"));

    // The web server's JSON log lines: every line an object, the checkout's
    // lines with the trace's id and the order's.
    let log = std::fs::read_to_string(shop.web.log()).expect("the web server's log");
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line.get(field).is_some(), "{field} missing from {line}");
        }
    }
    let approved = lines.iter().find(|line| line["message"] == "approved").expect("the checkout's line");
    assert_eq!(approved["trace_id"], trace_id.as_str(), "{approved}");
    assert_eq!(approved["order_id"], order_id.as_str(), "{approved}");
    assert_eq!(approved["span_id"].as_str().map(str::len), Some(16), "{approved}");
    // The log records exported with the spans carry the same trace.
    let exported = eventually("the web server's log records", Duration::from_millis(100), || async {
        collector.logs().into_iter().find(|log| log.service == "web" && otlp::hex(&log.record.trace_id) == trace_id)
    })
    .await;
    assert_eq!(otlp::hex(&exported.record.trace_id), trace_id);
}

#[tokio::test]
async fn an_order_recovered_by_a_new_executor_leader_stays_in_its_checkouts_trace() {
    let (collector, receiver) = otlp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shop = Shop::start(&binaries(), dir.path(), &traced(&receiver.url()), false);
    shop.ready().await;
    let http = reqwest::Client::new();
    let (status, answer, trace_id) = checkout(&http, &shop, &seed::rest_order()).await;
    assert_eq!(status, 200, "{answer}");
    let (trace_id, order_id) = (trace_id.expect("a trace"), answer["orderId"].as_str().expect("an id").to_owned());

    // books_db hangs: the leader logs Start and waits for its vote (a books_db
    // prepare rides out a books_db election for up to 15 s), and is killed then.
    for id in 1..=3 {
        shop.side.books_db.replica(id).signal(Signal::Pause);
    }
    shop.side.executors.start_all();
    let first = shop.side.executors.leader().await;
    let executing = format!("{}/orders/{order_id}", shop.web_url());
    eventually("the order executing", Duration::from_millis(20), || async {
        let status: Value =
            http.get(&executing).header("accept", "application/json").send().await.ok()?.json().await.ok()?;
        (status["status"] == "executing").then_some(())
    })
    .await;
    shop.side.executors.kill(first);
    for id in 1..=3 {
        shop.side.books_db.replica(id).signal(Signal::Resume);
    }
    let order = final_status(&http, &shop, &order_id).await;
    assert_eq!(order["status"], "aborted", "undecided when its leader died: {order}");
    assert_eq!(order["traceId"], trace_id.as_str());

    let recovered = eventually("the recovery's spans", Duration::from_millis(100), || async {
        let spans = collector.trace(&trace_id);
        let recovery = spans.into_iter().find(|span| {
            span.span.name == "process orders"
                && span.attribute(semconv::MESSAGING_OPERATION_NAME).as_deref() == Some("recover")
        })?;
        let completed = collector
            .trace(&trace_id)
            .into_iter()
            .any(|span| span.span.name == "log Complete" && span.service == recovery.service);
        completed.then_some(recovery)
    })
    .await;
    assert_ne!(recovered.service, format!("order_executor-{first}"), "a new leader recovered it");
    let send = one(&collector.trace(&trace_id), "send orders", "web").span_id();
    assert_eq!(recovered.parent_id(), send, "the recovery continues the checkout's trace");
    assert_eq!(recovered.attribute("order.id").as_deref(), Some(order_id.as_str()));
}

#[tokio::test]
async fn prometheus_counts_what_the_shop_did_and_every_dashboard_query_returns_data() {
    let (collector, receiver) = otlp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let shop = Shop::start(&binaries(), dir.path(), &traced(&receiver.url()), true);
    shop.ready().await;
    let targets = shop.metrics_urls();
    assert_eq!(targets.len(), 12, "every process: {targets:?}");
    let prometheus = Prometheus::start(&targets, dir.path()).await;
    let http = reqwest::Client::new();

    // Three orders committed, one aborted by the card issuer, one refused as fraud.
    let mut order_ids = Vec::new();
    for _ in 0..3 {
        let (status, answer, _) = checkout(&http, &shop, &seed::rest_order()).await;
        assert_eq!(status, 200, "{answer}");
        order_ids.push(answer["orderId"].as_str().expect("an id").to_owned());
    }
    let declined = with(seed::rest_order(), "creditCard.number", "4000000000000002".into());
    let (status, answer, _) = checkout(&http, &shop, &declined).await;
    assert_eq!(status, 200, "{answer}");
    order_ids.push(answer["orderId"].as_str().expect("an id").to_owned());
    let fraud = with(seed::rest_order(), "user.name", "John Doe".into());
    let (status, answer, _) = checkout(&http, &shop, &fraud).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("user_blocklisted")), "{answer}");
    let mut outcomes = BTreeMap::<String, usize>::new();
    for order_id in &order_ids {
        let order = final_status(&http, &shop, order_id).await;
        *outcomes.entry(order["status"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    assert_eq!(outcomes, BTreeMap::from([("aborted".to_owned(), 1), ("committed".to_owned(), 3)]));

    // What PromQL finds, once Prometheus has scraped it.
    let expected = [
        ("count(up == 1)", 12.0),
        (r#"sum(checkouts_total{outcome="approved"})"#, 4.0),
        (r#"sum(checkouts_total{outcome="refused", step="check_user", code="user_blocklisted"})"#, 1.0),
        // The adaptive admission limit: at the ceiling, since a handful of
        // checkouts one at a time never judge a window.
        ("count(checkout_admission_limit == 64)", 1.0),
        (r#"sum(http_server_request_duration_seconds_count{http_route="/checkout", http_request_method="POST"})"#, 5.0),
        (
            r#"sum(rpc_server_call_duration_seconds_count{rpc_method="bookstore.v1.FraudDetection/CheckCard", rpc_response_status_code="OK"})"#,
            4.0,
        ),
        (r#"sum(order_queue_enqueued_total)"#, 4.0),
        (r#"sum(order_queue_acknowledged_total)"#, 4.0),
        (r#"sum(order_queue_depth)"#, 0.0),
        (r#"sum(order_executor_decisions_total{decision="commit"})"#, 3.0),
        (r#"sum(order_executor_decisions_total{decision="abort", reason="payment_declined"})"#, 1.0),
        (r#"sum(order_executor_orders_finished_total{outcome="committed"})"#, 3.0),
        (r#"sum(order_executor_orders_finished_total{outcome="aborted"})"#, 1.0),
        (r#"sum(payment_authorizations_total{result="approved"})"#, 3.0),
        (r#"sum(payment_authorizations_total{result="declined"})"#, 1.0),
        (r#"sum(payment_captures_total)"#, 3.0),
        (r#"count(raft_role{group="books_db", role="leader"} == 1)"#, 1.0),
        (r#"count(raft_role{group="order_executor", role="leader"} == 1)"#, 1.0),
        (r#"count(raft_term{group="order_executor"})"#, 3.0),
    ];
    for (promql, value) in expected {
        prometheus.eventually_equals(promql, value).await;
    }

    // A slow bucket leads to its trace: the checkout latency's exemplars name
    // traces the receiver has.
    let exemplars = prometheus.exemplars("checkout_duration_seconds_bucket", 10).await;
    let traced: Vec<String> = exemplars
        .iter()
        .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|exemplar| exemplar["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!traced.is_empty(), "no exemplars: {exemplars:?}");
    for trace_id in &traced {
        assert!(!collector.trace(trace_id).is_empty(), "exemplar trace {trace_id} is not among the traces");
    }

    // Every query of every dashboard returns data from the running shop, once
    // the series have the samples a rate needs (the refusal's came last).
    prometheus.eventually_at_least("min(count_over_time(checkouts_total[1m]))", 3.0).await;
    for (dashboard, promql) in dashboard_queries() {
        let series = prometheus.query(&promql).await;
        assert!(!series.is_empty(), "{dashboard}: {promql} returns no series");
    }

    // Every process's metrics pass promtool's lint.
    for (process, url) in &targets {
        let text = http.get(format!("{url}/metrics")).send().await.expect("scrape").text().await.expect("text");
        let (clean, said) = promtool_check(&text);
        assert!(clean && said.trim().is_empty(), "promtool on {process}'s metrics: {said}");
    }
}

/// Every PromQL expression of the Grafana dashboards in `deploy/grafana`, with
/// Grafana's variables as a query here gives them: `$__rate_interval`,
/// `$__interval` and `$__range` a minute, a template variable all of its
/// values (`.*`).
fn dashboard_queries() -> Vec<(String, String)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards");
    let mut queries = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(&folder).expect("the dashboards").flatten().map(|entry| entry.path()).collect();
    files.sort();
    for file in files.into_iter().filter(|path| path.extension().is_some_and(|ext| ext == "json")) {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
        let name = dashboard["title"].as_str().unwrap_or_default().to_owned();
        let mut exprs = Vec::new();
        collect_exprs(&dashboard["panels"], &mut exprs);
        for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(query) = variable["query"]["query"].as_str().or(variable["query"].as_str()) {
                // label_values(metric, label) asks for a metric's series.
                if let Some(inner) = query.strip_prefix("label_values(") {
                    exprs.push(inner.split(',').next().unwrap_or_default().trim().to_owned());
                }
            }
        }
        assert!(!exprs.is_empty(), "{} has no queries", file.display());
        for expr in exprs {
            let promql = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1m");
            let promql = regex_variables(&promql);
            queries.push((name.clone(), promql));
        }
    }
    assert!(queries.len() >= 20, "the dashboards hold {} queries", queries.len());
    queries
}

fn collect_exprs(panels: &Value, exprs: &mut Vec<String>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                exprs.push(expr.to_owned());
            }
        }
        collect_exprs(&panel["panels"], exprs);
    }
}

/// `$name` (a template variable) as "any value": the dashboards match them
/// with `=~`.
fn regex_variables(promql: &str) -> String {
    let mut out = String::new();
    let mut chars = promql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|next| next.is_ascii_alphabetic()) {
            while chars.peek().is_some_and(|next| next.is_ascii_alphanumeric() || *next == '_') {
                chars.next();
            }
            out.push_str(".*");
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn a_collector_that_is_down_or_never_answers_costs_the_shopper_nothing() {
    // The black hole accepts connections and never answers; the other port has
    // nothing listening. Exports time out or fail; spans beyond a small queue
    // are dropped; checkouts answer all the same.
    let hole = testkit::service::start_hung_service().await;
    let closed = testkit::processes::free_port();
    for (what, endpoint) in [("black-holed", hole.url()), ("down", format!("http://127.0.0.1:{closed}"))] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut environment = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8"),
        ]);
        environment.push(("LOG_FORMAT".to_owned(), "text".to_owned()));
        let shop = Shop::start(&binaries(), dir.path(), &environment, true);
        shop.ready().await;
        let http = reqwest::Client::new();
        for _ in 0..4 {
            let (status, answer, trace_id) = checkout(&http, &shop, &seed::rest_order()).await;
            assert_eq!(status, 200, "collector {what}: {answer}");
            assert!(trace_id.is_some(), "the shop still traces");
        }
        let metrics = format!("{}/metrics", shop.web_url());
        eventually(format!("dropped spans counted (collector {what})"), Duration::from_millis(100), || async {
            let text = http.get(&metrics).send().await.ok()?.text().await.ok()?;
            let dropped: f64 = text
                .lines()
                .filter(|line| line.starts_with("otel_spans_dropped_total"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            (dropped > 0.0).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn without_a_collector_or_json_logs_nothing_is_traced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shop = Shop::start(&binaries(), dir.path(), &[], true);
    shop.ready().await;
    let http = reqwest::Client::new();
    let (status, answer, trace_id) = checkout(&http, &shop, &seed::rest_order()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(trace_id, None, "no trace, no traceresponse");
    let order = final_status(&http, &shop, answer["orderId"].as_str().expect("an id")).await;
    assert!(order.get("traceId").is_none(), "{order}");
    let metrics =
        http.get(format!("{}/metrics", shop.web_url())).send().await.expect("scrape").text().await.expect("text");
    assert!(metrics.contains("checkouts_total"), "{metrics}");
    assert!(!metrics.contains("otel_spans"), "no exporter, nothing of one counted");
    let log = std::fs::read_to_string(shop.web.log()).expect("the web server's log");
    assert!(log.lines().all(|line| !line.starts_with('{')), "readable text lines by default");
}
