//! The gRPC face of transaction_verification: clock bookkeeping around the rules.

use std::sync::Arc;

use domain::{Catalog, RefusalClass, Verifier};
use proto::v1 as pb;
use proto::v1::transaction_verification_server::TransactionVerification;
use tonic::{Request, Response, Status};

use super::rules;
use super::stock::StockSource;
use crate::refusal::RuleRefusal;
use crate::verification_cache::{self as cache, VerificationCache};

pub struct TransactionVerificationService {
    cache: Arc<VerificationCache<pb::Order>>,
    catalog: Arc<Catalog>,
    stock: Arc<dyn StockSource>,
}

impl TransactionVerificationService {
    pub fn new(catalog: Arc<Catalog>, stock: Arc<dyn StockSource>) -> Self {
        Self {
            cache: Arc::new(VerificationCache::new(
                Verifier::TransactionVerification,
                cache::DEFAULT_CAPACITY,
                cache::DEFAULT_TTL,
            )),
            catalog,
            stock,
        }
    }

    /// Event a: the rules, then the stock of every line (one read).
    async fn check_items(&self, order: &pb::Order) -> Result<(), RuleRefusal> {
        let lines = rules::verify_items(order, &self.catalog)?;
        let book_ids: Vec<String> = lines.iter().map(|line| line.book_id.clone()).collect();
        let available = self.stock.available(&book_ids).await.map_err(|error| {
            RuleRefusal::new(RefusalClass::Unavailable, "stock_unavailable", error.to_string(), None)
        })?;
        rules::check_stock(&lines, &self.catalog, &available)
    }

    /// The cache its events read, for the `OrderCache` service beside it.
    pub fn cache(&self) -> Arc<VerificationCache<pb::Order>> {
        Arc::clone(&self.cache)
    }
}

#[tonic::async_trait]
impl TransactionVerification for TransactionVerificationService {
    async fn verify_items(&self, request: Request<pb::EventRequest>) -> Result<Response<pb::EventResponse>, Status> {
        cache::run_event(&self.cache, "verify_items", request.into_inner(), |order| async move {
            self.check_items(&order).await
        })
        .await
        .map(Response::new)
    }

    async fn verify_user_data(
        &self,
        request: Request<pb::EventRequest>,
    ) -> Result<Response<pb::EventResponse>, Status> {
        cache::run_event(&self.cache, "verify_user_data", request.into_inner(), |order| async move {
            rules::verify_user_data(&order)
        })
        .await
        .map(Response::new)
    }

    async fn verify_card_format(
        &self,
        request: Request<pb::EventRequest>,
    ) -> Result<Response<pb::EventResponse>, Status> {
        cache::run_event(&self.cache, "verify_card_format", request.into_inner(), |order| async move {
            rules::verify_card_format(&order, platform::clock::this_month())
        })
        .await
        .map(Response::new)
    }
}
