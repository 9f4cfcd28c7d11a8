//! The checkout page in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), against the real web server and services on loopback.
//!
//! Needs the page's built assets (`cargo leptos build`, which `make test` runs
//! first) and `chromium` + `chromedriver` on PATH (`scripts/setup.sh browser`).

use crate::support;

use fantoccini::Locator;
use serde_json::json;
use support::browser::Browser;
use support::{Stack, StackOptions};

/// Where cargo-leptos put the page's assets.
fn site_root() -> String {
    std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site").to_owned())
}

async fn stack() -> Stack {
    let root = site_root();
    assert!(
        std::path::Path::new(&root).join("hash.txt").exists(),
        "{root}/hash.txt is missing: build the page with `make build-site` (make test does)"
    );
    Stack::start_with(StackOptions { site_root: Some(root), ..StackOptions::default() }).await
}

/// Any page, once the wasm has hydrated it (the order, result and cluster pages
/// are lazy routes: their code arrives in a module of its own).
const HYDRATED: &str = "body[data-hydrated='true']";

/// Opens the page and waits until the wasm has hydrated it.
async fn open_hydrated(browser: &Browser, stack: &Stack) {
    browser.client.goto(&stack.url("/")).await.unwrap();
    browser.wait_for("form#checkout-form[data-hydrated='true']").await;
}

#[tokio::test]
async fn a_shopper_places_the_seed_order_and_sees_the_approval_with_suggestions() {
    let stack = stack().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    browser.fill_seed_order("Simon Lawrence").await;
    browser.submit().await;
    browser.wait_for("#outcome-approved").await;
    let order_id = browser.client.find(Locator::Id("outcome-order-id")).await.unwrap().text().await.unwrap();
    assert!(!order_id.trim().is_empty());
    let suggestions = browser.client.find_all(Locator::Css("#outcome-suggestions li")).await.unwrap();
    assert_eq!(suggestions.len(), 3);
    let queued = stack.dequeue().await.expect("the order reached the queue");
    assert_eq!(queued.order_id, order_id.trim());
    browser.close().await;
}

#[tokio::test]
async fn a_fraud_refusal_is_shown_at_the_fraud_step_with_the_field_highlighted() {
    let stack = stack().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    browser.fill_seed_order("John Doe").await;
    browser.submit().await;
    let refused = browser.wait_for("#outcome-refused").await;
    let step = browser.client.find(Locator::Id("outcome-step")).await.unwrap().text().await.unwrap();
    assert_eq!(step, domain::Step::CheckUser.label());
    assert!(refused.text().await.unwrap().contains("cannot accept orders for this name"));
    assert_eq!(browser.attribute("field-user-name", "aria-invalid").await.as_deref(), Some("true"));
    browser.close().await;
}

#[tokio::test]
async fn an_invalid_card_number_is_flagged_inline_before_submitting() {
    let stack = stack().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    browser.fill("field-creditCard-number", "4716 4015 8980 6288").await;
    // Leave the field, as a shopper would.
    browser.client.find(Locator::Id("field-creditCard-cvv")).await.unwrap().click().await.unwrap();
    let error = browser.wait_for("#field-creditCard-number-error:not(:empty)").await;
    assert!(error.text().await.unwrap().contains("not valid"), "inline error explains the typo");
    assert_eq!(browser.attribute("field-creditCard-number", "aria-invalid").await.as_deref(), Some("true"));
    assert_eq!(stack.cached_orders().await, [0, 0, 0], "nothing was submitted");
    browser.close().await;
}

#[tokio::test]
async fn without_javascript_the_form_still_submits_and_shows_the_outcome() {
    let stack = stack().await;
    let browser = Browser::start(false).await;
    browser.client.goto(&stack.url("/")).await.unwrap();
    browser.wait_for("form#checkout-form").await;
    browser.fill_seed_order("Simon Lawrence").await;
    browser.submit().await;
    browser.wait_for("#outcome-approved").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/checkout/result", "landed on the result page: {url}");
    let queued = stack.dequeue().await.expect("the order reached the queue");
    let shown = browser.client.find(Locator::Id("outcome-order-id")).await.unwrap().text().await.unwrap();
    assert_eq!(shown.trim(), queued.order_id);
    browser.close().await;
}

async fn shop() -> Stack {
    let root = site_root();
    Stack::start_with(StackOptions { site_root: Some(root), execution: true, ..StackOptions::default() }).await
}

#[tokio::test]
async fn after_checkout_the_page_follows_the_order_to_committed() {
    let stack = shop().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    browser.fill_seed_order("Simon Lawrence").await;
    browser.submit().await;
    browser.wait_for("#outcome-approved").await;
    browser.wait_for("#order-live-status[data-status='committed']").await;
    browser.close().await;
}

#[tokio::test]
async fn a_declined_payment_shows_the_order_aborted_with_the_reason() {
    let stack = shop().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    browser.fill_seed_order("Simon Lawrence").await;
    browser.fill("field-creditCard-number", "4000 0000 0000 0002").await;
    browser.submit().await;
    browser.wait_for("#order-live-status[data-status='aborted']").await;
    let reason = browser.client.find(Locator::Id("order-live-reason")).await.unwrap().text().await.unwrap();
    assert!(reason.contains("card declined"), "{reason}");
    browser.close().await;
}

#[tokio::test]
async fn the_order_page_and_the_cluster_page_render_live_data() {
    let stack = shop().await;
    let (status, body) = stack.checkout(&support::seed_order()).await;
    assert_eq!(status, 200, "{body}");
    let order_id = body["orderId"].as_str().unwrap().to_owned();
    let browser = Browser::start(true).await;
    browser.client.goto(&stack.url(&format!("/orders/{order_id}"))).await.unwrap();
    browser.wait_for(HYDRATED).await;
    browser.wait_for("#order-live-status[data-status='committed']").await;
    // The journey: a-f, queued, started, two votes, the decision, the end.
    browser.wait_for("#order-journey li[data-step='completed']").await;
    let steps = browser.client.find_all(Locator::Css("#order-journey li[data-step]")).await.unwrap();
    assert_eq!(steps.len(), 12);
    let clock = browser.client.find(Locator::Css("#order-journey li[data-step='suggest_books'] .journey-clock")).await;
    assert_eq!(clock.unwrap().text().await.unwrap(), "[3,2,1]");
    browser.client.goto(&stack.url("/cluster")).await.unwrap();
    browser.wait_for(HYDRATED).await;
    browser.wait_for("#cluster-executors tr.replica.leader").await;
    browser.wait_for("#cluster-books-db tr.replica.leader").await;
    let rows = browser.client.find_all(Locator::Css("#cluster-executors tr.replica")).await.unwrap();
    assert_eq!(rows.len(), 3);
    browser.close().await;
}

/// A sealed result link, as a shopper without JavaScript is sent to it.
async fn result_link(stack: &Stack) -> String {
    let response = stack.post_checkout_form(support::ITEM_ONLY_FORM).await;
    let location = response.headers().get("location").expect("a redirect to the result page");
    location.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_page_fits_every_screen_width() {
    let stack = shop().await;
    let (status, body) = stack.checkout(&support::seed_order()).await;
    assert_eq!(status, 200, "{body}");
    let order = format!("/orders/{}", body["orderId"].as_str().unwrap());
    let result = result_link(&stack).await;
    let pages = [
        ("checkout", "/".to_owned(), "form#checkout-form[data-hydrated='true']"),
        ("result", result, "main#main section.outcome"),
        ("order", order, "#order-live-status[data-status='committed']"),
        ("cluster", "/cluster".to_owned(), "#cluster-books-db tr.replica.leader"),
    ];
    // Screenshots are kept for a person to look at.
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let browser = Browser::start(true).await;
    let mut overflowing = Vec::new();
    for width in [375_u32, 768, 1280] {
        browser.client.set_window_size(width, 900).await.unwrap();
        for (name, path, ready) in &pages {
            browser.client.goto(&stack.url(path)).await.unwrap();
            browser.wait_for(HYDRATED).await;
            browser.wait_for(ready).await;
            let widths = browser
                .client
                .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
                .await
                .unwrap();
            let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
            std::fs::write(shots.join(format!("{name}-{width}.png")), browser.client.screenshot().await.unwrap())
                .unwrap();
            if scroll > inner {
                overflowing.push(format!("{name} at {width} px: {scroll} px wide in a {inner} px window"));
            }
        }
    }
    browser.close().await;
    assert!(overflowing.is_empty(), "pages overflow sideways: {overflowing:#?}");
}

/// The page's weight budget: everything the checkout page's first load transfers
/// (HTML, CSS, JS, wasm), compressed, headers included.
const FIRST_LOAD_BUDGET_BYTES: u64 = 250_000;

#[tokio::test]
async fn the_checkout_page_first_load_stays_within_its_weight_budget() {
    let stack = stack().await;
    let browser = Browser::start(true).await;
    open_hydrated(&browser, &stack).await;
    let entries = browser
        .client
        .execute(
            "return [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
                .map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize]);",
            vec![],
        )
        .await
        .unwrap();
    let entries: Vec<(String, u64, u64, u64)> = serde_json::from_value(entries).unwrap();
    let total: u64 = entries.iter().map(|(_, transferred, _, _)| transferred).sum();
    let listing = entries
        .iter()
        .map(|(name, transferred, encoded, decoded)| {
            format!("{transferred:>8} B on the wire ({encoded} B body, {decoded} B decoded) {name}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    println!("first load of the checkout page, {total} B in all:\n{listing}");
    let kinds = |ext: &str| entries.iter().filter(|(name, ..)| name.ends_with(ext)).count();
    assert_eq!((kinds(".wasm"), kinds(".js")), (1, 2), "one wasm module and its two scripts:\n{listing}");
    for (name, _, encoded, decoded) in &entries {
        assert!(encoded < decoded, "{name} came uncompressed ({encoded} B)");
    }
    assert!(
        total <= FIRST_LOAD_BUDGET_BYTES,
        "{total} B transferred, over the {FIRST_LOAD_BUDGET_BYTES} B budget:\n{listing}"
    );
    // Interactive: typing shows the inline error without a round trip.
    browser.fill("field-creditCard-number", "4716 4015 8980 6288").await;
    browser.client.find(Locator::Id("field-creditCard-cvv")).await.unwrap().click().await.unwrap();
    browser.wait_for("#field-creditCard-number-error:not(:empty)").await;
    // Once the shopper is on the form, the code a placed order needs is fetched.
    let fetched = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const seen = () => performance.getEntriesByType('resource').some(e => e.name.includes('/pkg/split_submit_'));
             const started = Date.now();
             const look = () => seen() ? done(true) : Date.now() - started > 10000 ? done(false) : setTimeout(look, 20);
             look();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched, json!(true), "the submission's module was not fetched while the shopper typed");
    browser.close().await;
}

#[tokio::test]
async fn the_page_files_come_compressed_and_hashed_names_are_cached_for_good() {
    let stack = stack().await;
    let page = stack.http.get(stack.url("/")).header("accept-encoding", "br, gzip").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "br", "the page is compressed");
    assert_eq!(page.headers()["cache-control"], "no-cache", "the page is revalidated");
    let hashes = std::fs::read_to_string(std::path::Path::new(&site_root()).join("hash.txt")).unwrap();
    let hash = |kind: &str| {
        hashes.lines().find_map(|line| line.strip_prefix(kind)).map(|hash| hash.trim().to_owned()).unwrap()
    };
    for (file, kind) in [
        (format!("bookstore.{}.wasm", hash("wasm:")), "application/wasm"),
        (format!("bookstore.{}.js", hash("js:")), "text/javascript"),
    ] {
        let url = stack.url(&format!("/pkg/{file}"));
        for encoding in ["br", "gzip"] {
            let response = stack.http.get(&url).header("accept-encoding", encoding).send().await.unwrap();
            assert_eq!(response.status(), 200, "{file}");
            assert_eq!(response.headers()["content-encoding"], encoding, "{file}");
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind), "{file}");
            assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable", "{file}");
        }
        let plain = stack.http.get(&url).send().await.unwrap();
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{file} is sent as is when nothing else is accepted"
        );
    }
    let api = stack.http.get(stack.url("/openapi.json")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(api.headers()["content-encoding"], "gzip", "API answers are compressed too");
}

/// axe-core's script (npm, `scripts/setup.sh browser`), injected into each page.
fn axe_script() -> String {
    let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
        let tools = std::env::var("BOOKSTORE_TOOLS")
            .unwrap_or_else(|_| format!("{}/.cache/bookstore", std::env::var("HOME").unwrap_or_default()));
        format!("{tools}/node/node_modules/axe-core/axe.min.js")
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{path}: {error} (scripts/setup.sh browser installs axe-core)"))
}

/// Runs axe-core on the page as it is now; one line per rule broken, with where.
async fn accessibility_violations(browser: &Browser, axe: &str) -> Vec<String> {
    browser.client.execute(axe, vec![]).await.unwrap();
    let report = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document)
                .then(r => done({
                    passed: r.passes.length,
                    violations: r.violations.map(v =>
                        `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`),
                }))
                .catch(e => done({ passed: 0, violations: [`axe failed: ${e}`] }));",
            vec![],
        )
        .await
        .unwrap();
    // The audit ran: a page of this size passes dozens of axe's rules.
    let passed = report["passed"].as_u64().unwrap();
    assert!(passed >= 10, "axe checked only {passed} rules: {report}");
    serde_json::from_value(report["violations"].clone()).unwrap()
}

#[tokio::test]
async fn every_page_passes_an_accessibility_audit_empty_refused_and_approved() {
    let axe = axe_script();
    let stack = shop().await;
    let (status, body) = stack.checkout(&support::seed_order()).await;
    assert_eq!(status, 200, "{body}");
    let order = format!("/orders/{}", body["orderId"].as_str().unwrap());
    let result = result_link(&stack).await;
    let browser = Browser::start(true).await;
    let mut found = Vec::new();
    let mut audit = |state: &str, violations: Vec<String>| {
        found.extend(violations.into_iter().map(|violation| format!("{state}: {violation}")));
    };

    // The checkout page: empty, with an inline error, refused, approved.
    open_hydrated(&browser, &stack).await;
    audit("checkout, empty", accessibility_violations(&browser, &axe).await);
    browser.fill("field-creditCard-number", "4716 4015 8980 6288").await;
    browser.client.find(Locator::Id("field-creditCard-cvv")).await.unwrap().click().await.unwrap();
    browser.wait_for("#field-creditCard-number-error:not(:empty)").await;
    audit("checkout, inline error", accessibility_violations(&browser, &axe).await);
    browser.fill_seed_order("John Doe").await;
    browser.submit().await;
    browser.wait_for("#outcome-refused").await;
    audit("checkout, refused", accessibility_violations(&browser, &axe).await);
    open_hydrated(&browser, &stack).await;
    browser.fill_seed_order("Simon Lawrence").await;
    browser.submit().await;
    browser.wait_for("#outcome-approved").await;
    audit("checkout, approved", accessibility_violations(&browser, &axe).await);

    // The other pages, with data and without.
    let pages = [
        ("result, approved", result.clone(), "main#main section.outcome"),
        ("result, changed link", result.replace("seal=", "seal=0"), "#outcome-unknown"),
        ("order, committed", order, "#order-live-status[data-status='committed']"),
        ("order, unknown", "/orders/no-such-order".to_owned(), "#order-unknown"),
        ("cluster", "/cluster".to_owned(), "#cluster-books-db tr.replica.leader"),
        ("not found", "/no-such-page".to_owned(), "main#main section.not-found"),
    ];
    for (state, path, ready) in &pages {
        browser.client.goto(&stack.url(path)).await.unwrap();
        browser.wait_for(HYDRATED).await;
        browser.wait_for(ready).await;
        audit(state, accessibility_violations(&browser, &axe).await);
    }
    browser.close().await;
    drop(stack);

    // The cluster page when nothing of the execution side answers.
    let stack = self::stack().await;
    let browser = Browser::start(true).await;
    browser.client.goto(&stack.url("/cluster")).await.unwrap();
    browser.wait_for("#cluster-executors").await;
    audit("cluster, silent", accessibility_violations(&browser, &axe).await);
    browser.close().await;
    assert!(found.is_empty(), "accessibility violations:\n{}", found.join("\n"));
}
