//! The gRPC face of suggestions.

use std::sync::Arc;

use domain::{Catalog, Participant};
use proto::v1 as pb;
use proto::v1::suggestions_server::Suggestions;
use proto::vector_clock::{clock_from_proto, clock_to_proto};
use tonic::{Request, Response, Status};

use crate::verification_cache::{self as cache, VerificationCache};

pub struct SuggestionsService {
    cache: VerificationCache<pb::Order>,
    catalog: Arc<Catalog>,
    count: usize,
}

impl SuggestionsService {
    pub fn new(catalog: Arc<Catalog>, count: usize) -> Self {
        Self {
            cache: VerificationCache::new(Participant::Suggestions, cache::DEFAULT_CAPACITY, cache::DEFAULT_TTL),
            catalog,
            count,
        }
    }
}

#[tonic::async_trait]
impl Suggestions for SuggestionsService {
    async fn init_order(
        &self,
        request: Request<pb::InitOrderRequest>,
    ) -> Result<Response<pb::InitOrderResponse>, Status> {
        cache::init_order(&self.cache, request.into_inner()).map(Response::new)
    }

    async fn suggest(&self, request: Request<pb::EventRequest>) -> Result<Response<pb::SuggestResponse>, Status> {
        let request = request.into_inner();
        let incoming = clock_from_proto(request.clock.as_ref()).map_err(cache::CacheError::from)?;
        let (order, clock) = self.cache.event(&request.order_id, &incoming)?;
        let ordered: Vec<&str> = order.items.iter().map(|item| item.book_id.trim()).collect();
        let books = self
            .catalog
            .suggest(&ordered, self.count)
            .into_iter()
            .map(|book| pb::SuggestedBook {
                book_id: book.id.clone(),
                title: book.title.clone(),
                author: book.author.clone(),
            })
            .collect();
        tracing::debug!(order_id = %request.order_id, %clock, "suggested");
        Ok(Response::new(pb::SuggestResponse { clock: Some(clock_to_proto(clock)), books }))
    }

    async fn clear_order(
        &self,
        request: Request<pb::ClearOrderRequest>,
    ) -> Result<Response<pb::ClearOrderResponse>, Status> {
        cache::clear_order(&self.cache, "suggestions", request.get_ref()).map(Response::new)
    }

    async fn cached_orders(
        &self,
        _: Request<pb::CachedOrdersRequest>,
    ) -> Result<Response<pb::CachedOrdersResponse>, Status> {
        Ok(Response::new(cache::cached_orders(&self.cache)))
    }
}
