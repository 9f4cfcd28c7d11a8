//! The gRPC face of transaction_verification: clock bookkeeping around the rules.

use std::sync::Arc;

use domain::{Catalog, Participant, RefusalClass};
use proto::v1 as pb;
use proto::v1::transaction_verification_server::TransactionVerification;
use tonic::{Request, Response, Status};

use super::rules;
use super::stock::StockSource;
use crate::rejection::Rejection;
use crate::verification_cache::{self as cache, VerificationCache};

pub struct TransactionVerificationService {
    cache: VerificationCache<pb::Order>,
    catalog: Arc<Catalog>,
    stock: Arc<dyn StockSource>,
}

impl TransactionVerificationService {
    pub fn new(catalog: Arc<Catalog>, stock: Arc<dyn StockSource>) -> Self {
        Self {
            cache: VerificationCache::new(
                Participant::TransactionVerification,
                cache::DEFAULT_CAPACITY,
                cache::DEFAULT_TTL,
            ),
            catalog,
            stock,
        }
    }

    /// Event a: the rules, then the stock of every line (one read).
    async fn check_items(&self, order: &pb::Order) -> Result<(), Rejection> {
        let lines = rules::verify_items(order, &self.catalog)?;
        let book_ids: Vec<String> = lines.iter().map(|line| line.book_id.clone()).collect();
        let available =
            self.stock.available(&book_ids).await.map_err(|error| {
                Rejection::new(RefusalClass::Unavailable, "stock_unavailable", error.to_string(), None)
            })?;
        rules::check_stock(&lines, &self.catalog, &available)
    }
}

#[tonic::async_trait]
impl TransactionVerification for TransactionVerificationService {
    async fn init_order(
        &self,
        request: Request<pb::InitOrderRequest>,
    ) -> Result<Response<pb::InitOrderResponse>, Status> {
        cache::init_order(&self.cache, request.into_inner()).map(Response::new)
    }

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

    async fn clear_order(
        &self,
        request: Request<pb::ClearOrderRequest>,
    ) -> Result<Response<pb::ClearOrderResponse>, Status> {
        cache::clear_order(&self.cache, "transaction_verification", request.get_ref()).map(Response::new)
    }

    async fn cached_orders(
        &self,
        _: Request<pb::CachedOrdersRequest>,
    ) -> Result<Response<pb::CachedOrdersResponse>, Status> {
        Ok(Response::new(cache::cached_orders(&self.cache)))
    }
}
