//! The queue as Prometheus metrics: how many orders wait, by priority, and how
//! many are leased out (read from the store at every scrape), and what went
//! through it: enqueued by priority, delivered, delivered again after a lease
//! ran out or was given back, acknowledged.

use std::sync::Arc;

use domain::ClientCard;
use platform::metrics::Registry;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;

use super::store::QueueStore;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Priority {
    /// `Premium`, `Basic` or `None`: the client card.
    priority: &'static str,
}

/// What went through the queue.
#[derive(Clone, Default)]
pub(super) struct QueueMetrics {
    enqueued: Family<Priority, Counter>,
    delivered: Counter,
    redelivered: Counter,
    acknowledged: Counter,
}

impl QueueMetrics {
    /// The queue's metrics in `registry`, its depth read from `store`.
    pub(super) fn register(registry: &Registry, store: Arc<QueueStore>) -> Self {
        let metrics = Self::default();
        for card in ClientCard::ALL {
            let _ = metrics.enqueued.get_or_create(&Priority { priority: card.as_str() });
        }
        registry.register("order_queue_enqueued", "Orders added to the queue, by priority", metrics.enqueued.clone());
        registry.register(
            "order_queue_delivered",
            "Deliveries of orders to the executor leader",
            metrics.delivered.clone(),
        );
        registry.register(
            "order_queue_redeliveries",
            "Deliveries of an order delivered before (its lease ran out or was given back)",
            metrics.redelivered.clone(),
        );
        registry.register(
            "order_queue_acknowledged",
            "Orders the executors finished and acknowledged",
            metrics.acknowledged.clone(),
        );
        registry.register_collector(Depth(store));
        metrics
    }

    pub(super) fn enqueued(&self, priority: ClientCard) {
        self.enqueued.get_or_create(&Priority { priority: priority.as_str() }).inc();
    }

    /// An order delivered for the `delivery_count`th time.
    pub(super) fn delivered(&self, delivery_count: u32) {
        self.delivered.inc();
        if delivery_count > 1 {
            self.redelivered.inc();
        }
    }

    pub(super) fn acknowledged(&self) {
        self.acknowledged.inc();
    }
}

/// The queue's depth, read from the store when scraped.
struct Depth(Arc<QueueStore>);

impl std::fmt::Debug for Depth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Depth")
    }
}

impl Collector for Depth {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A store that cannot be read has no depth to show; its error shows in
        // the calls that fail, and `up` stays 1.
        let Ok(depth) = self.0.depth() else { return Ok(()) };
        let mut waiting = encoder.encode_descriptor(
            "order_queue_depth",
            "Orders waiting to be delivered, by priority",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for card in ClientCard::ALL {
            let count = depth.ready_by_rank[usize::from(card.queue_rank())];
            ConstGauge::new(count as i64).encode(waiting.encode_family(&Priority { priority: card.as_str() })?)?;
        }
        let leased = ConstGauge::new(depth.leased as i64);
        leased.encode(encoder.encode_descriptor(
            "order_queue_leased",
            "Orders delivered and not yet acknowledged",
            None,
            leased.metric_type(),
        )?)
    }
}
