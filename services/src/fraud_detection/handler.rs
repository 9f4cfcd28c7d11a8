//! The gRPC face of fraud_detection: clock bookkeeping around the rules.

use std::sync::{Arc, Mutex};

use domain::{Catalog, Participant};
use proto::v1 as pb;
use proto::v1::fraud_detection_server::FraudDetection;
use tonic::{Request, Response, Status};

use super::rules::{FraudConfig, FraudRules};
use crate::rejection::Rejection;
use crate::verification_cache::{self as cache, VerificationCache};

pub struct FraudDetectionService {
    cache: VerificationCache<pb::Order>,
    catalog: Arc<Catalog>,
    rules: Mutex<FraudRules>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl FraudDetectionService {
    pub fn new(catalog: Arc<Catalog>, config: FraudConfig) -> Self {
        Self {
            cache: VerificationCache::new(Participant::FraudDetection, cache::DEFAULT_CAPACITY, cache::DEFAULT_TTL),
            catalog,
            rules: Mutex::new(FraudRules::new(&config)),
        }
    }

    fn with_rules(&self, check: impl FnOnce(&mut FraudRules) -> Result<(), Rejection>) -> Result<(), Rejection> {
        // The rules' state is counters; a panic elsewhere cannot corrupt them.
        check(&mut self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
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
        cache::run_event(&self.cache, "check_user", request.into_inner(), |order| async move {
            self.with_rules(|rules| rules.check_user(&order, now_ms()))
        })
        .await
        .map(Response::new)
    }

    async fn check_card(&self, request: Request<pb::EventRequest>) -> Result<Response<pb::EventResponse>, Status> {
        cache::run_event(&self.cache, "check_card", request.into_inner(), |order| async move {
            self.with_rules(|rules| rules.check_card(&order, &self.catalog, now_ms()))
        })
        .await
        .map(Response::new)
    }

    async fn clear_order(
        &self,
        request: Request<pb::ClearOrderRequest>,
    ) -> Result<Response<pb::ClearOrderResponse>, Status> {
        cache::clear_order(&self.cache, "fraud_detection", request.get_ref()).map(Response::new)
    }

    async fn cached_orders(
        &self,
        _: Request<pb::CachedOrdersRequest>,
    ) -> Result<Response<pb::CachedOrdersResponse>, Status> {
        Ok(Response::new(cache::cached_orders(&self.cache)))
    }
}
