//! The gRPC face of fraud_detection: clock bookkeeping around the rules.

use platform::clock::unix_ms;
use std::sync::{Arc, Mutex};

use domain::{Catalog, Verifier};
use proto::v1 as pb;
use proto::v1::fraud_detection_server::FraudDetection;
use tonic::{Request, Response, Status};

use super::rules::{FraudConfig, FraudRules};
use super::velocity::Settlement;
use crate::verification_cache::{self as cache, OnClear, VerificationCache};

pub struct FraudDetectionService {
    cache: Arc<VerificationCache<pb::Order>>,
    catalog: Arc<Catalog>,
    rules: Mutex<FraudRules>,
}

impl FraudDetectionService {
    pub fn new(catalog: Arc<Catalog>, config: FraudConfig) -> Self {
        Self {
            cache: Arc::new(VerificationCache::new(
                Verifier::FraudDetection,
                cache::DEFAULT_CAPACITY,
                cache::DEFAULT_TTL,
            )),
            catalog,
            rules: Mutex::new(FraudRules::new(&config)),
        }
    }

    fn with_rules<R>(&self, work: impl FnOnce(&mut FraudRules) -> R) -> R {
        // The rules' state is counters; a panic elsewhere cannot corrupt them.
        work(&mut self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The cache its events read, for the `OrderCache` service beside it.
    pub fn cache(&self) -> Arc<VerificationCache<pb::Order>> {
        Arc::clone(&self.cache)
    }
}

#[tonic::async_trait]
impl FraudDetection for FraudDetectionService {
    async fn check_user(&self, request: Request<pb::EventRequest>) -> Result<Response<pb::EventResponse>, Status> {
        let request = request.into_inner();
        let order_id = request.order_id.clone();
        cache::run_event(&self.cache, "check_user", request, |order| async move {
            self.with_rules(|rules| rules.check_user(&order_id, &order, unix_ms()))
        })
        .await
        .map(Response::new)
    }

    async fn check_card(&self, request: Request<pb::EventRequest>) -> Result<Response<pb::EventResponse>, Status> {
        let request = request.into_inner();
        let order_id = request.order_id.clone();
        cache::run_event(&self.cache, "check_card", request, |order| async move {
            self.with_rules(|rules| rules.check_card(&order_id, &order, &self.catalog, unix_ms()))
        })
        .await
        .map(Response::new)
    }
}

/// What fraud detection counted for the order is settled by how its checkout ended:
/// approved orders and fraud refusals stay in the velocity windows, checkouts
/// refused for anything else leave them.
impl OnClear for FraudDetectionService {
    fn cleared(&self, order_id: &str, result: pb::CheckoutResult) {
        let settlement = match result {
            pb::CheckoutResult::Approved => Settlement::Order,
            pb::CheckoutResult::Fraud | pb::CheckoutResult::Undecided => Settlement::Attempt,
            pb::CheckoutResult::Invalid | pb::CheckoutResult::OutOfStock | pb::CheckoutResult::Unavailable => {
                Settlement::Withdrawn
            }
            // Also what prost reads for a value this build does not know.
            pb::CheckoutResult::Unspecified => {
                tracing::warn!(%order_id, "clear_order without a result: the checkout stays counted");
                return;
            }
        };
        self.with_rules(|rules| rules.settle(order_id, settlement));
    }
}
