//! A real Prometheus for the tests: Debian's `prometheus` package, started on a
//! loopback port with a generated scrape configuration (every second, exemplars
//! kept), asked in PromQL over its HTTP API; and `promtool`, its linter.
//! Missing, they fail the test with how to install them (`scripts/setup.sh
//! observe`; `make test` runs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::probe::eventually;
use testkit::processes::free_port;

const INSTALL: &str = "install Debian's prometheus package (`scripts/setup.sh observe`; `make test` runs it)";

/// `name` on the PATH (or in `/usr/bin`), else the test fails saying how to get it.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| panic!("{name} is not installed: {INSTALL}"))
}

pub struct Prometheus {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Prometheus scraping `targets` (a process's name, its metrics URL) every
    /// second, its data and log under `dir`; once it answers.
    pub async fn start(targets: &[(String, String)], dir: &Path) -> Self {
        let addresses: Vec<String> =
            targets.iter().map(|(_, url)| url.trim_start_matches("http://").to_owned()).collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, platform::metrics::scrape_config(1, &addresses)).expect("write the scrape config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting prometheus: {error}"));
        let prometheus = Self { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let ready = format!("{}/-/ready", prometheus.url);
        let what = format!("prometheus ready (log in {})", dir.display());
        eventually(what, Duration::from_millis(100), || async {
            prometheus.http.get(&ready).send().await.ok()?.status().is_success().then_some(())
        })
        .await;
        prometheus
    }

    /// The series `promql` answers now (`data.result` of an instant query);
    /// panics naming the query if Prometheus refuses it.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api("query", promql, &[("query", promql)]).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// The `data` of what the HTTP API at `/api/v1/<path>` answers to `params`;
    /// panics naming `promql` if Prometheus refuses it.
    async fn api(&self, path: &str, promql: &str, params: &[(&str, &str)]) -> Value {
        let mut answer: Value = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(params)
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("prometheus answers JSON");
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"].take()
    }

    /// The single number `promql` answers now, if it answers one series.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let series = self.query(promql).await;
        let [one] = series.as_slice() else { return None };
        one["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` answers `expected`.
    pub async fn eventually_equals(&self, promql: &str, expected: f64) {
        let what = format!("{promql} = {expected}");
        eventually(what, Duration::from_millis(250), || async {
            (self.value(promql).await == Some(expected)).then_some(())
        })
        .await
    }

    /// Waits until `promql` answers at least `least`.
    pub async fn eventually_at_least(&self, promql: &str, least: f64) {
        let what = format!("{promql} >= {least}");
        eventually(what, Duration::from_millis(250), || async {
            self.value(promql).await.is_some_and(|value| value >= least).then_some(())
        })
        .await
    }

    /// The exemplars Prometheus keeps for `promql` over the last `minutes`.
    pub async fn exemplars(&self, promql: &str, minutes: u64) -> Vec<Value> {
        let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let start = end.saturating_sub(minutes * 60);
        let (start, end) = (start.to_string(), end.to_string());
        let data = self.api("query_exemplars", promql, &[("query", promql), ("start", &start), ("end", &end)]).await;
        data.as_array().cloned().unwrap_or_default()
    }
}

/// What `promtool check metrics` says of `text` (Prometheus's text format):
/// its exit status and its findings.
pub fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ends");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}
