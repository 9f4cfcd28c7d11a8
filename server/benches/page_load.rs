//! How soon the checkout page answers a shopper: headless Chromium loads `/` from
//! the web server on loopback and the page marks the moment it has hydrated
//! (`app::INTERACTIVE_MARK`, set once typing shows inline errors). Beside it, from
//! the same loads, the reference: when the HTML had arrived and when the DOM was
//! ready, so what the page's own scripts cost is the difference. Cold loads use a
//! new browser profile each (nothing cached); warm loads come back in the same
//! session (the hashed files from the cache).
//!
//! A benchmark, not a test: it prints figures and asserts nothing about time.
//!
//! Run: `make build-site && cargo bench -p server --bench page_load` (optionally
//! `-- <loads>`, default 20). With `PAGE_LOAD_REFERENCE=<url>` it also loads that
//! page (another build of the shop, already running), taking turns with this one,
//! and prints both. Results go in docs/benchmarks.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use support::browser::Browser;
use support::{Stack, StackOptions};

/// Milliseconds from the start of the navigation: HTML in, DOM ready, interactive,
/// and the bytes transferred.
async fn timings(browser: &Browser) -> [f64; 4] {
    let script = format!(
        "const n = performance.getEntriesByType('navigation')[0];
         const i = performance.getEntriesByName('{}')[0];
         const bytes = [n, ...performance.getEntriesByType('resource')].reduce((s, e) => s + e.transferSize, 0);
         return [n.responseEnd, n.domContentLoadedEventEnd, i ? i.startTime : -1, bytes];",
        app::INTERACTIVE_MARK
    );
    let value = browser.client.execute(&script, vec![]).await.unwrap();
    serde_json::from_value(value).unwrap()
}

fn summary(label: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "  {label:<24} median {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms",
        at(0.5),
        at(0.9),
        values[values.len() - 1]
    );
}

/// Cold and warm loads of one page.
#[derive(Default)]
struct Loads {
    cold: Vec<[f64; 4]>,
    warm: Vec<[f64; 4]>,
}

impl Loads {
    /// One cold load in a new browser profile, then a warm one in the same session.
    async fn measure(&mut self, url: &str) {
        let browser = Browser::start(true).await;
        for round in 0..2 {
            browser.client.goto(url).await.unwrap();
            browser.wait_for("form#checkout-form[data-hydrated='true']").await;
            let found = timings(&browser).await;
            assert!(found[2] >= 0.0, "{url} set no {} mark", app::INTERACTIVE_MARK);
            if round == 0 { &mut self.cold } else { &mut self.warm }.push(found);
        }
        browser.close().await;
    }

    fn print(&self, name: &str) {
        let column = |rows: &[[f64; 4]], index: usize| rows.iter().map(|row| row[index]).collect::<Vec<_>>();
        let bytes = column(&self.cold, 3);
        println!("{name}, cold (new profile, {:.0} B transferred):", bytes.iter().sum::<f64>() / bytes.len() as f64);
        summary("HTML arrived", column(&self.cold, 0));
        summary("DOM ready", column(&self.cold, 1));
        summary("interactive", column(&self.cold, 2));
        println!("{name}, warm (same session, files from the cache):");
        summary("HTML arrived", column(&self.warm, 0));
        summary("DOM ready", column(&self.warm, 1));
        summary("interactive", column(&self.warm, 2));
    }
}

#[tokio::main]
async fn main() {
    let loads: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(20);
    let site_root = std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site").to_owned());
    let stack = Stack::start_with(StackOptions { site_root: Some(site_root), ..StackOptions::default() }).await;
    let url = stack.url("/");
    let reference = std::env::var("PAGE_LOAD_REFERENCE").ok();
    let (mut this, mut other) = (Loads::default(), Loads::default());
    for _ in 0..loads {
        this.measure(&url).await;
        if let Some(reference) = &reference {
            other.measure(reference).await;
        }
    }
    println!("checkout page, {loads} loads each, headless Chromium on loopback (release build)");
    this.print("this build");
    if let Some(reference) = &reference {
        other.print(&format!("reference ({reference})"));
    }
}
