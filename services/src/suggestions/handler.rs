//! The gRPC face of suggestions.

use std::sync::Arc;

use domain::{Catalog, Verifier};
use proto::v1 as pb;
use proto::v1::suggestions_server::Suggestions;
use proto::vector_clock::{clock_from_proto, clock_to_proto};
use tonic::{Request, Response, Status};

use crate::verification_cache::{self as cache, VerificationCache};

pub struct SuggestionsService {
    cache: Arc<VerificationCache<pb::Order>>,
    catalog: Arc<Catalog>,
    count: usize,
}

impl SuggestionsService {
    pub fn new(catalog: Arc<Catalog>, count: usize) -> Self {
        Self {
            cache: Arc::new(VerificationCache::new(Verifier::Suggestions, cache::DEFAULT_CAPACITY, cache::DEFAULT_TTL)),
            catalog,
            count,
        }
    }

    /// The cache its events read, for the `OrderCache` service beside it.
    pub fn cache(&self) -> Arc<VerificationCache<pb::Order>> {
        Arc::clone(&self.cache)
    }
}

#[tonic::async_trait]
impl Suggestions for SuggestionsService {
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
}
