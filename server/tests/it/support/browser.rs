//! A headless Chromium driven over WebDriver (chromedriver), for the browser tests
//! and the page-load benchmark.

#![allow(dead_code)] // the benchmark uses only part of it

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::future_expiry;

pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// chromedriver, in a process group of its own that the Chromium it starts joins.
pub struct Driver(Child);

impl Drop for Driver {
    /// Kills the process group: chromedriver and every Chromium process it
    /// started, also when a test panics (even while the session is being opened).
    fn drop(&mut self) {
        let group = self.0.id();
        let _ = Command::new("sh").arg("-c").arg(format!("kill -KILL -{group} 2>/dev/null")).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub async fn start(javascript: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver on PATH (scripts/setup.sh browser installs it)");
        let driver = Driver(driver);
        let profile = tempfile::tempdir().unwrap();
        let mut options = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1600",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        if let Ok(binary) = std::env::var("CHROMIUM_BINARY") {
            options["binary"] = json!(binary);
        }
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen; try for up to ten seconds.
        let mut attempts = 0;
        let client = loop {
            match ClientBuilder::new(connector.clone()).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(error) if attempts < 100 => {
                    attempts += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot open a browser session: {error}"),
            }
        };
        Self { client, _driver: driver, _profile: profile }
    }

    /// Ends the WebDriver session; dropping the browser then ends the processes.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} did not appear: {error}"))
    }

    pub async fn fill(&self, field_id: &str, value: &str) {
        let input = self.client.find(Locator::Id(field_id)).await.unwrap_or_else(|e| panic!("#{field_id}: {e}"));
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    pub async fn attribute(&self, field_id: &str, name: &str) -> Option<String> {
        self.client.find(Locator::Id(field_id)).await.unwrap().attr(name).await.unwrap()
    }

    /// Fills the form like a shopper: the seed's buyer and card.
    pub async fn fill_seed_order(&self, name: &str) {
        self.fill("field-user-name", name).await;
        self.fill("field-user-contact", "simon.lawrence@example.org").await;
        self.fill("field-billingAddress-street", "Narva mnt 18").await;
        self.fill("field-billingAddress-city", "Tartu").await;
        self.fill("field-billingAddress-zip", "51009").await;
        self.fill("field-billingAddress-country", "Estonia").await;
        self.fill("field-creditCard-number", "4716 4015 8980 6287").await;
        self.fill("field-creditCard-expirationDate", &future_expiry()).await;
        self.fill("field-creditCard-cvv", "556").await;
        let terms = self.client.find(Locator::Id("field-termsAccepted")).await.unwrap();
        if terms.prop("checked").await.unwrap().as_deref() != Some("true") {
            terms.click().await.unwrap();
        }
    }

    pub async fn submit(&self) {
        self.client.find(Locator::Id("place-order")).await.unwrap().click().await.unwrap();
    }
}
