//! What a run reports: live progress, the orders followed to their end, the
//! checks, and the summary as text, JSON and an HTML page with SVG charts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use crate::shopper::{Intent, Plan, Scenario};
use crate::stats::{percentiles_ms, Percentiles, Recorder, Request};
use crate::Shop;

/// A progress bar with the last second's figures, on a terminal only.
pub struct Progress {
    bar: indicatif::ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(title: &str, duration: Duration, recorder: Arc<Mutex<Recorder>>, quiet: bool) -> Self {
        let bar = match quiet {
            true => indicatif::ProgressBar::hidden(),
            false => indicatif::ProgressBar::new(duration.as_secs().max(1)),
        };
        let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(title.to_owned());
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let elapsed = started.elapsed().as_secs();
                shown.set_position(elapsed);
                let recorder = recorder.lock().unwrap_or_else(PoisonError::into_inner);
                // The last whole second.
                if let Some(second) = elapsed.checked_sub(1).and_then(|s| recorder.seconds.get(s as usize)) {
                    shown.set_message(format!(
                        "{} req/s, {} accepted, p50 {:.1} ms, p99 {:.1} ms",
                        second.requests,
                        second.accepted,
                        second.latency.value_at_quantile(0.5) as f64 / 1000.0,
                        second.latency.value_at_quantile(0.99) as f64 / 1000.0,
                    ));
                }
            }
        });
        Self { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// How the accepted orders ended, as their status says.
#[derive(Debug, Default)]
pub struct Ends {
    /// Order id → (intent, the final status, why aborted, accepted → completed in ms).
    pub finished: HashMap<String, (Intent, domain::OrderState, Option<String>, Option<u64>)>,
    pub unfinished: Vec<String>,
    /// The first acceptance and the last completion seen, Unix ms.
    pub first_accepted_ms: Option<u64>,
    pub last_completed_ms: Option<u64>,
}

/// Follows every accepted order until it is committed or aborted, or `drain` runs out.
pub async fn follow(shop: &Shop, recorder: &Recorder, drain: Duration, quiet: bool) -> Ends {
    let mut ends = Ends::default();
    let mut pending: Vec<(String, Intent)> =
        recorder.accepted.iter().map(|accepted| (accepted.order_id.clone(), accepted.intent)).collect();
    if pending.is_empty() {
        return ends;
    }
    let bar = match quiet {
        true => indicatif::ProgressBar::hidden(),
        false => indicatif::ProgressBar::new(pending.len() as u64),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("following the accepted orders [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let deadline = tokio::time::Instant::now() + drain;
    loop {
        let statuses: Vec<_> = futures::stream::iter(pending.iter().cloned())
            .map(|(id, intent)| async move { (shop.order_status(&id).await, id, intent) })
            .buffer_unordered(32)
            .collect()
            .await;
        pending.clear();
        for (status, id, intent) in statuses {
            let Some(status) = status.filter(|status| status.status.is_final()) else {
                pending.push((id, intent));
                continue;
            };
            let execution = status.journey.as_ref().and_then(|journey| journey.execution.as_ref());
            let accepted_at =
                status.journey.as_ref().and_then(|journey| journey.queued.as_ref()).map(|q| q.accepted_at_ms);
            let completed_at = execution.and_then(|execution| execution.completed_at_ms);
            if let Some(at) = accepted_at {
                ends.first_accepted_ms = Some(ends.first_accepted_ms.map_or(at, |first| first.min(at)));
            }
            if let Some(at) = completed_at {
                ends.last_completed_ms = Some(ends.last_completed_ms.map_or(at, |last| last.max(at)));
            }
            let took = accepted_at.zip(completed_at).map(|(accepted, completed)| completed.saturating_sub(accepted));
            ends.finished.insert(id, (intent, status.status, status.reason, took));
            bar.inc(1);
        }
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_and_clear();
    ends.unfinished = pending.into_iter().map(|(id, _)| id).collect();
    ends
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunArgs {
    pub target: String,
    pub scenario: Scenario,
    pub shoppers: Option<usize>,
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub requests_per_s: f64,
    pub accepted_per_s: f64,
    pub latency: BTreeMap<Request, Percentiles>,
    /// The accepted checkouts' latency alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_latency: Option<Percentiles>,
    /// The refused checkouts' latency alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_latency: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub accepted: usize,
    pub committed: usize,
    pub aborted: usize,
    pub unfinished: usize,
    /// Accepted → committed or aborted, from the services' own stamps.
    pub end_to_end_ms: Option<Percentiles>,
    /// Committed orders over the span from the first acceptance to the last
    /// completion.
    pub committed_per_s: Option<f64>,
    /// Aborted orders by reason.
    pub aborted_because: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub run: RunArgs,
    pub load: Throughput,
    /// The same load on `/readyz`, when asked for (`--floor`).
    pub floor: Option<Throughput>,
    /// Answers by request, intent and outcome.
    pub answers: BTreeMap<String, u64>,
    pub execution: Execution,
    pub checks: Vec<Check>,
}

fn throughput(recorder: &Recorder, duration_s: f64) -> Throughput {
    let requests: u64 = recorder.seconds.iter().map(|second| second.requests).sum();
    Throughput {
        requests_per_s: requests as f64 / duration_s,
        accepted_per_s: recorder.accepted.len() as f64 / duration_s,
        latency: recorder.latency.iter().map(|(request, histogram)| (*request, Percentiles::of(histogram))).collect(),
        accepted_latency: recorder.accepted_latency.as_ref().map(Percentiles::of),
        refused_latency: recorder.refused_latency.as_ref().map(Percentiles::of),
    }
}

impl Summary {
    pub fn new(run: &RunArgs, plan: &Plan, recorder: &Recorder, floor: Option<&Recorder>, ends: &Ends) -> Self {
        let committed = |intent: Option<Intent>| {
            ends.finished
                .values()
                .filter(|(i, state, _, _)| {
                    *state == domain::OrderState::Committed && intent.is_none_or(|want| *i == want)
                })
                .count()
        };
        let mut aborted_because = BTreeMap::new();
        for (_, state, reason, _) in ends.finished.values() {
            if *state == domain::OrderState::Aborted {
                *aborted_because.entry(reason.clone().unwrap_or_else(|| "no reason given".to_owned())).or_default() +=
                    1;
            }
        }
        let took: Vec<u64> = ends.finished.values().filter_map(|(_, _, _, took)| *took).collect();
        let span_s = ends
            .first_accepted_ms
            .zip(ends.last_completed_ms)
            .map(|(first, last)| last.saturating_sub(first) as f64 / 1000.0)
            .filter(|span| *span > 0.0);
        let execution = Execution {
            accepted: recorder.accepted.len(),
            committed: committed(None),
            aborted: ends.finished.len() - committed(None),
            unfinished: ends.unfinished.len(),
            end_to_end_ms: percentiles_ms(&took),
            committed_per_s: span_s.map(|span| committed(None) as f64 / span),
            aborted_because,
        };
        let mut checks = vec![Check {
            name: "every accepted order ended".to_owned(),
            passed: ends.unfinished.is_empty(),
            detail: match ends.unfinished.as_slice() {
                [] => format!("{} accepted, all committed or aborted", recorder.accepted.len()),
                unfinished => format!(
                    "{} of {} not committed or aborted in time, e.g. {}",
                    unfinished.len(),
                    recorder.accepted.len(),
                    unfinished[..unfinished.len().min(5)].join(", ")
                ),
            },
        }];
        checks.push(Check {
            name: "every checkout answered as it must be".to_owned(),
            passed: recorder.wrong.is_empty(),
            detail: match recorder.wrong.as_slice() {
                [] => format!(
                    "{} good (accepted or, out of stock, 409), {} fraudulent (403), {} invalid (400), {} contended",
                    recorder.sent.get(&Intent::Good).copied().unwrap_or(0),
                    recorder.sent.get(&Intent::Fraud).copied().unwrap_or(0),
                    recorder.sent.get(&Intent::Invalid).copied().unwrap_or(0),
                    recorder.sent.get(&Intent::Contended).copied().unwrap_or(0)
                ),
                wrong => format!("{} wrong answers, e.g. {}", wrong.len(), wrong[..wrong.len().min(3)].join("; ")),
            },
        });
        if matches!(plan.scenario, Scenario::Good | Scenario::Mixed) {
            let accepted = recorder.accepted.len();
            checks.push(Check {
                name: "good checkouts accepted".to_owned(),
                passed: accepted > 0,
                detail: format!("{accepted} accepted"),
            });
        }
        if plan.scenario == Scenario::Contended {
            let sold = committed(Some(Intent::Contended));
            checks.push(Check {
                name: format!("\"{}\" never oversold", plan.contended.title),
                passed: sold as u32 <= plan.contended.stock,
                detail: format!(
                    "{sold} orders committed for it; the catalog starts it with {} copies",
                    plan.contended.stock
                ),
            });
        }
        Self {
            run: run.clone(),
            load: throughput(recorder, run.duration_s),
            floor: floor.map(|floor| throughput(floor, run.duration_s)),
            answers: recorder.answers.clone(),
            execution,
            checks,
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let run = &self.run;
        let shape = match (run.shoppers, run.rate) {
            (Some(shoppers), _) => format!("{shoppers} shoppers (closed loop)"),
            (_, Some(rate)) => format!("{rate} requests/s (open loop)"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:?} against {}: {shape}, {:.0} s, seed {}",
            run.scenario, run.target, run.duration_s, run.seed
        );
        let table = |out: &mut String, title: &str, throughput: &Throughput| {
            let _ = writeln!(
                out,
                "\n{title}: {:.1} requests/s, {:.1} accepted/s",
                throughput.requests_per_s, throughput.accepted_per_s
            );
            let _ = writeln!(
                out,
                "  {:<14} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                "ms", "p50", "p90", "p99", "p99.9", "max", "count"
            );
            for (request, p) in &throughput.latency {
                let _ = writeln!(
                    out,
                    "  {:<14} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9}",
                    format!("{request:?}"),
                    p.p50,
                    p.p90,
                    p.p99,
                    p.p999,
                    p.max,
                    p.count
                );
            }
        };
        table(&mut out, "load", &self.load);
        if let Some(floor) = &self.floor {
            table(&mut out, "floor (/readyz, same load)", floor);
            if floor.requests_per_s > 0.0 {
                let _ = writeln!(out, "  load ÷ floor: {:.2}", self.load.requests_per_s / floor.requests_per_s);
            }
        }
        let _ = writeln!(out, "\nanswers:");
        for (answer, count) in &self.answers {
            let _ = writeln!(out, "  {count:>8}  {answer}");
        }
        let e = &self.execution;
        let _ = writeln!(
            out,
            "\nexecution: {} accepted, {} committed, {} aborted, {} unfinished",
            e.accepted, e.committed, e.aborted, e.unfinished
        );
        if let Some(p) = &e.end_to_end_ms {
            let _ = writeln!(
                out,
                "  accepted → ended, ms: p50 {:.0}, p90 {:.0}, p99 {:.0}, max {:.0}",
                p.p50, p.p90, p.p99, p.max
            );
        }
        if let Some(rate) = e.committed_per_s {
            let _ = writeln!(out, "  committed orders/s: {rate:.1}");
        }
        for (reason, count) in &e.aborted_because {
            let _ = writeln!(out, "  {count:>8}  aborted: {reason}");
        }
        let _ = writeln!(out, "\nchecks:");
        for check in &self.checks {
            let _ =
                writeln!(out, "  [{}] {}: {}", if check.passed { "ok" } else { "FAILED" }, check.name, check.detail);
        }
        out
    }
}

/// The report as one HTML page: the summary and charts of throughput and latency
/// over the run's seconds.
pub fn html(summary: &Summary, recorder: &Recorder, floor: Option<&Recorder>) -> String {
    let per_second = |recorder: &Recorder, pick: fn(&crate::stats::Second) -> f64| -> Vec<f64> {
        recorder.seconds.iter().map(pick).collect()
    };
    let mut throughput = vec![
        ("requests/s", "#1f77b4", per_second(recorder, |s| s.requests as f64)),
        ("accepted/s", "#2ca02c", per_second(recorder, |s| s.accepted as f64)),
        ("refused/s", "#ff7f0e", per_second(recorder, |s| s.refused as f64)),
        ("failed/s", "#d62728", per_second(recorder, |s| s.failed as f64)),
    ];
    let mut latency = vec![
        ("p50 ms", "#1f77b4", per_second(recorder, |s| s.latency.value_at_quantile(0.5) as f64 / 1000.0)),
        ("p99 ms", "#d62728", per_second(recorder, |s| s.latency.value_at_quantile(0.99) as f64 / 1000.0)),
    ];
    if let Some(floor) = floor {
        throughput.push(("floor requests/s", "#7f7f7f", per_second(floor, |s| s.requests as f64)));
        latency.push((
            "floor p99 ms",
            "#7f7f7f",
            per_second(floor, |s| s.latency.value_at_quantile(0.99) as f64 / 1000.0),
        ));
    }
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadgen: {scenario:?}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         pre{{background:#f6f6f6;padding:1rem;overflow-x:auto}}</style></head><body>\
         <h1>loadgen: {scenario:?}</h1>\n<h2>Throughput over time</h2>\n{throughput}\n\
         <h2>Latency over time</h2>\n{latency}\n<h2>Summary</h2>\n<pre>{text}</pre>\n</body></html>\n",
        scenario = summary.run.scenario,
        throughput = svg_chart("per second of the run", &throughput),
        latency = svg_chart("latency of requests sent in each second, ms", &latency),
        text = escape(&summary.text()),
    )
}

/// A line chart of per-second series, as inline SVG.
fn svg_chart(title: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let (width, height, left, bottom, top, right) = (800.0, 300.0, 60.0, 30.0, 20.0, 150.0);
    let seconds = series.iter().map(|(_, _, values)| values.len()).max().unwrap_or(0).max(2);
    let peak = series.iter().flat_map(|(_, _, values)| values.iter().copied()).fold(0.0_f64, f64::max);
    let top_value = nice_ceiling(peak);
    let x = |i: usize| left + (width - left - right) * i as f64 / (seconds - 1) as f64;
    let y = |value: f64| top + (height - top - bottom) * (1.0 - value / top_value);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{title}\">\
         <text x=\"{left}\" y=\"12\" font-size=\"12\">{title}</text>"
    );
    for step in 0..=4 {
        let value = top_value * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{value:.0}</text>",
            width - right,
            left - 4.0,
            y(value) + 3.0,
            y = y(value),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">seconds into the run (0–{})</text>",
        (left + width - right) / 2.0,
        height - 6.0,
        seconds - 1
    );
    for (index, (name, color, values)) in series.iter().enumerate() {
        let points: Vec<String> =
            values.iter().enumerate().map(|(i, value)| format!("{:.1},{:.1}", x(i), y(*value))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{color}\">{name}</text>",
            points.join(" "),
            width - right + 8.0,
            top + 14.0 * (index as f64 + 1.0),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A round number at or above `value` for a chart's top.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|m| *m >= value).unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_have_a_line_per_series_and_round_tops() {
        let svg = svg_chart("t", &[("a", "#000", vec![1.0, 5.0, 3.0]), ("b", "#111", vec![2.0, 2.0])]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(nice_ceiling(4.2), 5.0);
        assert_eq!(nice_ceiling(480.0), 500.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
