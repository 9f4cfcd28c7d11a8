//! The vector-clocked order cache each verification service keeps.
//!
//! `init_order` stores the order with the clock `[0,0,0]`; every event merges the
//! caller's clock and ticks this service's entry; `clear_order` deletes the copy
//! only when the local clock is ≤ the orchestrator's final clock — otherwise the
//! service saw events the orchestrator did not, which is reported as an anomaly and
//! the copy is kept for inspection. Copies are also dropped after a time-to-live so
//! an orchestrator that died mid-checkout cannot leak memory, and the cache holds at
//! most `capacity` orders.
//!
//! [`OrderCacheService`] is the `OrderCache` gRPC service (init, clear, count) all
//! three serve; [`run_event`] the shared handling of their events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::vector_clock::WrongWidth;
use domain::{VectorClock, Verifier};
use proto::v1 as pb;
use proto::v1::order_cache_server::{OrderCache, OrderCacheServer};
use proto::vector_clock::{clock_from_proto, clock_to_proto};
use tonic::{Request, Response, Status};

use crate::refusal::RuleRefusal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("order {0} is not cached here (never initialised, cleared, or expired)")]
    UnknownOrder(String),
    #[error("order {0} is already cached")]
    AlreadyCached(String),
    #[error("the cache is full ({0} orders in verification); try again shortly")]
    Full(usize),
    #[error("order id must be 1 to 64 characters")]
    BadOrderId,
    #[error(transparent)]
    WrongWidth(#[from] WrongWidth),
}

impl From<CacheError> for Status {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::UnknownOrder(_) => Status::not_found(error.to_string()),
            CacheError::AlreadyCached(_) => Status::already_exists(error.to_string()),
            CacheError::Full(_) => Status::resource_exhausted(error.to_string()),
            CacheError::BadOrderId | CacheError::WrongWidth(_) => Status::invalid_argument(error.to_string()),
        }
    }
}

/// What `clear` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    Deleted,
    /// Nothing was cached under that id (already cleared, or expired).
    NotFound,
    /// The local clock is not ≤ the final clock; the copy is kept.
    Anomaly {
        local: VectorClock,
    },
}

struct Entry<T> {
    order: Arc<T>,
    clock: VectorClock,
    cached_at: Instant,
}

pub struct VerificationCache<T> {
    verifier: Verifier,
    capacity: usize,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry<T>>>,
}

/// Defaults: 10 000 orders, ten minutes.
pub const DEFAULT_CAPACITY: usize = 10_000;
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

impl<T> VerificationCache<T> {
    pub fn new(verifier: Verifier, capacity: usize, ttl: Duration) -> Self {
        Self { verifier, capacity, ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        // A panic while holding the lock cannot leave the map half-updated (every
        // critical section is a single insert, remove or field write), so a
        // poisoned lock is still safe to use.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Caches `order` under `order_id` with the clock `[0,0,0]`.
    pub fn init(&self, order_id: &str, order: T) -> Result<VectorClock, CacheError> {
        if !domain::order::is_order_id(order_id) {
            return Err(CacheError::BadOrderId);
        }
        let mut entries = self.lock();
        let ttl = self.ttl;
        entries.retain(|_, entry| entry.cached_at.elapsed() < ttl);
        if entries.contains_key(order_id) {
            return Err(CacheError::AlreadyCached(order_id.to_owned()));
        }
        if entries.len() >= self.capacity {
            return Err(CacheError::Full(entries.len()));
        }
        let clock = VectorClock::default();
        entries.insert(order_id.to_owned(), Entry { order: Arc::new(order), clock, cached_at: Instant::now() });
        Ok(clock)
    }

    /// One event on a cached order: merge `incoming`, tick this service's entry,
    /// and hand back the order with the new clock.
    pub fn event(&self, order_id: &str, incoming: &VectorClock) -> Result<(Arc<T>, VectorClock), CacheError> {
        let mut entries = self.lock();
        let entry = entries.get_mut(order_id).ok_or_else(|| CacheError::UnknownOrder(order_id.to_owned()))?;
        entry.clock.receive(incoming, self.verifier);
        Ok((Arc::clone(&entry.order), entry.clock))
    }

    pub fn clear(&self, order_id: &str, final_clock: &VectorClock) -> Cleared {
        let mut entries = self.lock();
        match entries.get(order_id) {
            None => Cleared::NotFound,
            Some(entry) if entry.clock.le(final_clock) => {
                entries.remove(order_id);
                Cleared::Deleted
            }
            Some(entry) => Cleared::Anomaly { local: entry.clock },
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a verification service does, beyond forgetting its copy, when the
/// orchestrator clears an order: fraud_detection settles its velocity windows by
/// how the checkout ended; the others do nothing more.
pub trait OnClear: Send + Sync + 'static {
    fn cleared(&self, order_id: &str, result: pb::CheckoutResult);
}

/// The `OrderCache` service, the same for the three verification services: each
/// serves it beside its own service, over the cache its events read.
pub struct OrderCacheService {
    cache: Arc<VerificationCache<pb::Order>>,
    on_clear: Option<Arc<dyn OnClear>>,
}

impl OrderCacheService {
    pub fn new(cache: Arc<VerificationCache<pb::Order>>, on_clear: Option<Arc<dyn OnClear>>) -> Self {
        Self { cache, on_clear }
    }

    pub fn into_server(self) -> OrderCacheServer<Self> {
        OrderCacheServer::new(self)
    }
}

#[tonic::async_trait]
impl OrderCache for OrderCacheService {
    async fn init_order(
        &self,
        request: Request<pb::InitOrderRequest>,
    ) -> Result<Response<pb::InitOrderResponse>, Status> {
        let request = request.into_inner();
        platform::telemetry::about_order(&request.order_id);
        let order = request.order.ok_or_else(|| Status::invalid_argument("init_order needs the order"))?;
        let clock = self.cache.init(&request.order_id, order)?;
        Ok(Response::new(pb::InitOrderResponse { clock: Some(clock_to_proto(clock)) }))
    }

    /// Clears the copy (or logs the anomaly and keeps it), then lets the service
    /// settle what it counted.
    async fn clear_order(
        &self,
        request: Request<pb::ClearOrderRequest>,
    ) -> Result<Response<pb::ClearOrderResponse>, Status> {
        let request = request.into_inner();
        platform::telemetry::about_order(&request.order_id);
        let final_clock = clock_from_proto(request.final_clock.as_ref()).map_err(CacheError::from)?;
        let answer = match self.cache.clear(&request.order_id, &final_clock) {
            Cleared::Deleted | Cleared::NotFound => pb::ClearOrderResponse { cleared: true, ..Default::default() },
            Cleared::Anomaly { local } => {
                let anomaly = format!(
                    "local clock {local} is not <= final clock {final_clock}: this service saw events the orchestrator did not"
                );
                let service = self.cache.verifier.name();
                tracing::warn!(service, order_id = %request.order_id, %anomaly, "clear_order anomaly; keeping the cached copy");
                pb::ClearOrderResponse { cleared: false, anomaly, local_clock: Some(clock_to_proto(local)) }
            }
        };
        if let Some(on_clear) = &self.on_clear {
            on_clear.cleared(&request.order_id, request.result());
        }
        Ok(Response::new(answer))
    }

    async fn cached_orders(
        &self,
        _: Request<pb::CachedOrdersRequest>,
    ) -> Result<Response<pb::CachedOrdersResponse>, Status> {
        Ok(Response::new(pb::CachedOrdersResponse { count: u32::try_from(self.cache.len()).unwrap_or(u32::MAX) }))
    }
}

/// The shared handling of one checking event: tick the clock, run `check` on the
/// cached order, answer with the new clock and the refusal, if any.
pub async fn run_event<T, F, Fut>(
    cache: &VerificationCache<T>,
    step: &'static str,
    request: pb::EventRequest,
    check: F,
) -> Result<pb::EventResponse, Status>
where
    F: FnOnce(Arc<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(), RuleRefusal>>,
{
    platform::telemetry::about_order(&request.order_id);
    let incoming = clock_from_proto(request.clock.as_ref()).map_err(CacheError::from)?;
    let (order, clock) = cache.event(&request.order_id, &incoming)?;
    let refusal = check(order).await.err();
    match &refusal {
        Some(refusal) => {
            tracing::info!(order_id = %request.order_id, step, code = %refusal.code, %clock, "refused")
        }
        None => tracing::debug!(order_id = %request.order_id, step, %clock, "passed"),
    }
    Ok(pb::EventResponse { clock: Some(clock_to_proto(clock)), refusal: refusal.as_ref().map(RuleRefusal::to_proto) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> VerificationCache<&'static str> {
        VerificationCache::new(Verifier::FraudDetection, 2, DEFAULT_TTL)
    }

    #[test]
    fn events_merge_then_tick_the_own_entry() {
        let cache = cache();
        assert_eq!(cache.init("o1", "order").unwrap(), VectorClock::default());
        let (order, clock) = cache.event("o1", &VectorClock::new([2, 0, 0])).unwrap();
        assert_eq!((*order, clock), ("order", VectorClock::new([2, 1, 0])));
        let (_, clock) = cache.event("o1", &VectorClock::new([3, 0, 0])).unwrap();
        assert_eq!(clock, VectorClock::new([3, 2, 0]));
    }

    #[test]
    fn clears_only_when_the_local_clock_is_at_most_the_final_one() {
        let cache = cache();
        cache.init("o1", "order").unwrap();
        cache.event("o1", &VectorClock::new([2, 0, 0])).unwrap();
        assert_eq!(
            cache.clear("o1", &VectorClock::new([1, 1, 0])),
            Cleared::Anomaly { local: VectorClock::new([2, 1, 0]) }
        );
        assert_eq!(cache.len(), 1, "an anomaly keeps the copy");
        assert_eq!(cache.clear("o1", &VectorClock::APPROVED), Cleared::Deleted);
        assert!(cache.is_empty());
        assert_eq!(cache.clear("o1", &VectorClock::APPROVED), Cleared::NotFound);
    }

    #[test]
    fn refuses_unknown_duplicate_and_overflowing_orders() {
        let cache = cache();
        assert_eq!(cache.event("nope", &VectorClock::default()).unwrap_err(), CacheError::UnknownOrder("nope".into()));
        cache.init("o1", "a").unwrap();
        assert_eq!(cache.init("o1", "b").unwrap_err(), CacheError::AlreadyCached("o1".into()));
        cache.init("o2", "b").unwrap();
        assert_eq!(cache.init("o3", "c").unwrap_err(), CacheError::Full(2));
        assert_eq!(cache.init("", "c").unwrap_err(), CacheError::BadOrderId);
    }

    #[test]
    fn expired_copies_are_dropped() {
        let cache = VerificationCache::new(Verifier::Suggestions, 10, Duration::ZERO);
        cache.init("o1", "a").unwrap();
        cache.init("o2", "b").unwrap();
        assert_eq!(cache.len(), 1, "o1 expired when o2 came in");
    }
}
