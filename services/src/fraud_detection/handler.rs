//! The gRPC face of fraud_detection: clock bookkeeping around the rules.

use platform::clock::unix_ms;
use std::sync::{Arc, Mutex};

use domain::{Catalog, Participant};
use proto::v1 as pb;
use proto::v1::fraud_detection_server::FraudDetection;
use tonic::{Request, Response, Status};

use super::rules::{FraudConfig, FraudRules};
use super::velocity::Settlement;
use crate::verification_cache::{self as cache, VerificationCache};

pub struct FraudDetectionService {
    cache: VerificationCache<pb::Order>,
    catalog: Arc<Catalog>,
    rules: Mutex<FraudRules>,
}

impl FraudDetectionService {
    pub fn new(catalog: Arc<Catalog>, config: FraudConfig) -> Self {
        Self {
            cache: VerificationCache::new(Participant::FraudDetection, cache::DEFAULT_CAPACITY, cache::DEFAULT_TTL),
            catalog,
            rules: Mutex::new(FraudRules::new(&config)),
        }
    }

    fn with_rules<R>(&self, work: impl FnOnce(&mut FraudRules) -> R) -> R {
        // The rules' state is counters; a panic elsewhere cannot corrupt them.
        work(&mut self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

#[tonic::async_trait]
impl FraudDetection for FraudDetectionService {
    async fn init_order(
        &self,
        request: Request<pb::InitOrderRequest>,
    ) -> Result<Response<pb::InitOrderResponse>, Status> {
        cache::init_order(&self.cache, request.into_inner()).map(Response::new)
    }

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

    async fn clear_order(
        &self,
        request: Request<pb::ClearOrderRequest>,
    ) -> Result<Response<pb::ClearOrderResponse>, Status> {
        let request = request.into_inner();
        let answer = cache::clear_order(&self.cache, "fraud_detection", &request)?;
        let settlement = match request.result() {
            pb::CheckoutResult::Approved => Some(Settlement::Order),
            pb::CheckoutResult::Fraud | pb::CheckoutResult::Undecided => Some(Settlement::Attempt),
            pb::CheckoutResult::Invalid | pb::CheckoutResult::OutOfStock | pb::CheckoutResult::Unavailable => {
                Some(Settlement::Withdrawn)
            }
            // Also what prost reads for a value this build does not know.
            pb::CheckoutResult::Unspecified => {
                tracing::warn!(order_id = %request.order_id, "clear_order without a result: the checkout stays counted");
                None
            }
        };
        if let Some(settlement) = settlement {
            self.with_rules(|rules| rules.settle(&request.order_id, settlement));
        }
        Ok(Response::new(answer))
    }

    async fn cached_orders(
        &self,
        _: Request<pb::CachedOrdersRequest>,
    ) -> Result<Response<pb::CachedOrdersResponse>, Status> {
        Ok(Response::new(cache::cached_orders(&self.cache)))
    }
}
