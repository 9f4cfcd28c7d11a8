//! What a run saw: latency histograms (HDR, microseconds), answers by kind, and a
//! row per second of the run for the charts.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::shopper::Intent;

/// Requests of a run, by what they asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    Checkout,
    Page,
    OrderStatus,
    /// The floor: the web server's `/readyz` (the gRPC health check of every
    /// service a checkout calls, over the checkout's connections).
    Health,
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// A checkout accepted, with its order id.
    Accepted(String),
    /// Any other 2xx (pages, statuses).
    Ok,
    /// An error answer in the one JSON shape: status, step and code.
    Refused { status: u16, step: String, code: String },
    /// No answer: the connection failed or timed out.
    Failed(String),
}

/// A latency histogram from 1 µs to 100 s, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// One second of the run.
#[derive(Debug, Clone)]
pub struct Second {
    pub requests: u64,
    pub accepted: u64,
    pub refused: u64,
    pub failed: u64,
    pub latency: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Self { requests: 0, accepted: 0, refused: 0, failed: 0, latency: histogram() }
    }
}

/// An accepted checkout, for the end-to-end checks.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub order_id: String,
    pub intent: Intent,
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub latency: BTreeMap<Request, Histogram<u64>>,
    /// Accepted checkouts alone: beyond capacity the shop refuses the surplus at
    /// once, and the mix would hide how fast the accepted stay.
    pub accepted_latency: Option<Histogram<u64>>,
    /// Refused checkouts alone (a refusal at capacity should be fast).
    pub refused_latency: Option<Histogram<u64>>,
    /// (request, intent) → answer key → count. Keys read like
    /// "accepted" or "409 stock_shortfall at a".
    pub answers: BTreeMap<String, u64>,
    pub seconds: Vec<Second>,
    pub accepted: Vec<Accepted>,
    /// Checkouts whose answer was not the one their intent required.
    pub wrong: Vec<String>,
    /// Checkouts sent, by intent.
    pub sent: BTreeMap<Intent, u64>,
}

impl Recorder {
    /// Records a request sent `at` into the run that took `latency` and got `answer`.
    pub fn record(
        &mut self,
        request: Request,
        intent: Option<Intent>,
        at: Duration,
        latency: Duration,
        answer: Answer,
    ) {
        let micros = latency.as_micros().clamp(1, 100_000_000) as u64;
        self.latency.entry(request).or_insert_with(histogram).saturating_record(micros);
        let second = at.as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Second::default);
        }
        let row = &mut self.seconds[second];
        row.requests += 1;
        row.latency.saturating_record(micros);
        if let Some(intent) = intent {
            *self.sent.entry(intent).or_default() += 1;
        }
        let key = match &answer {
            Answer::Accepted(_) => "accepted".to_owned(),
            Answer::Ok => "ok".to_owned(),
            Answer::Refused { status, step, code } => format!("{status} {code} at {step}"),
            Answer::Failed(why) => format!("failed: {why}"),
        };
        *self.answers.entry(format!("{} {key}", label(request, intent))).or_default() += 1;
        match (&answer, intent) {
            (Answer::Accepted(order_id), Some(intent)) => {
                row.accepted += 1;
                self.accepted_latency.get_or_insert_with(histogram).saturating_record(micros);
                if intent.expected_status().is_some() {
                    self.wrong.push(format!("a {intent:?} checkout was accepted as {order_id}"));
                }
                self.accepted.push(Accepted { order_id: order_id.clone(), intent });
            }
            (Answer::Refused { status, .. }, Some(intent)) => {
                row.refused += 1;
                self.refused_latency.get_or_insert_with(histogram).saturating_record(micros);
                let wrong = match intent.expected_status() {
                    Some(expected) => expected != *status,
                    // A good checkout may only run out of stock.
                    None => intent == Intent::Good && *status != 409,
                };
                if wrong {
                    self.wrong.push(format!("a {intent:?} checkout got {key}"));
                }
            }
            (Answer::Failed(why), Some(Intent::Good)) => {
                row.failed += 1;
                self.wrong.push(format!("a Good checkout failed: {why}"));
            }
            (Answer::Refused { .. }, None) => row.refused += 1,
            (Answer::Failed(_), _) => row.failed += 1,
            _ => {}
        }
    }
}

fn label(request: Request, intent: Option<Intent>) -> String {
    let request = match request {
        Request::Checkout => "checkout",
        Request::Page => "page",
        Request::OrderStatus => "order status",
        Request::Health => "readyz",
    };
    match intent {
        Some(intent) => format!("{request} ({})", format!("{intent:?}").to_lowercase()),
        None => request.to_owned(),
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// A histogram of milliseconds (end-to-end execution times), percentiles as above.
pub fn percentiles_ms(values_ms: &[u64]) -> Option<Percentiles> {
    if values_ms.is_empty() {
        return None;
    }
    let mut histogram = histogram();
    for value in values_ms {
        histogram.saturating_record((value * 1000).max(1));
    }
    Some(Percentiles::of(&histogram))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_answers_flags_wrong_ones_and_keeps_a_row_per_second() {
        let mut recorder = Recorder::default();
        let ms = Duration::from_millis;
        recorder.record(Request::Checkout, Some(Intent::Good), ms(100), ms(2), Answer::Accepted("o1".into()));
        recorder.record(Request::Checkout, Some(Intent::Fraud), ms(1500), ms(3), Answer::Accepted("o2".into()));
        let refused = |status| Answer::Refused { status, step: "d".into(), code: "user_blocklisted".into() };
        recorder.record(Request::Checkout, Some(Intent::Fraud), ms(1600), ms(1), refused(403));
        recorder.record(Request::Checkout, Some(Intent::Invalid), ms(2100), ms(1), refused(403));
        recorder.record(Request::Checkout, Some(Intent::Good), ms(2200), ms(1), refused(403));
        recorder.record(Request::Checkout, Some(Intent::Good), ms(2300), ms(1), refused(409));
        assert_eq!(recorder.seconds.len(), 3);
        assert_eq!(
            (recorder.seconds[1].requests, recorder.seconds[1].accepted, recorder.seconds[1].refused),
            (2, 1, 1)
        );
        assert_eq!(recorder.accepted.len(), 2);
        assert_eq!(recorder.wrong.len(), 3, "{:?}", recorder.wrong);
        assert_eq!(recorder.answers["checkout (fraud) 403 user_blocklisted at d"], 1);
        let all = Percentiles::of(&recorder.latency[&Request::Checkout]);
        assert_eq!(all.count, 6);
        assert!(all.max >= 2.99 && all.max <= 3.01, "{all:?}");
    }
}
