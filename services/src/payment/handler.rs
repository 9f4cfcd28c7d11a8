//! The gRPC face of payment: validation, the issuer, the ledger off the async
//! runtime.

use std::sync::Arc;

use proto::v1 as pb;
use proto::v1::payment_server::Payment as PaymentApi;
use tonic::{Request, Response, Status};

use super::issuer::Issuer;
use super::ledger::{votes_yes, Hold, Ledger, LedgerError, Payment, PaymentState};
use super::metrics::PaymentMetrics;
use platform::grpc::order_id;

pub struct PaymentService {
    ledger: Arc<Ledger>,
    issuer: Arc<Issuer>,
    metrics: PaymentMetrics,
}

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Unknown(_) => Status::not_found(error.to_string()),
            LedgerError::Conflict { .. } => Status::failed_precondition(error.to_string()),
            LedgerError::Storage(_) => {
                tracing::error!(%error, "payment storage failed");
                Status::unavailable(error.to_string())
            }
        }
    }
}

fn record(payment: Payment) -> pb::PaymentRecord {
    pb::PaymentRecord {
        order_id: payment.order_id,
        state: pb::PaymentState::from(payment.state).into(),
        amount_cents: payment.amount_cents,
        card_network: payment.card_network,
        card_last4: payment.card_last4,
        captures: payment.captures,
        reason: payment.reason,
    }
}

impl PaymentService {
    pub(super) fn new(ledger: Arc<Ledger>, issuer: Arc<Issuer>, metrics: PaymentMetrics) -> Self {
        Self { ledger, issuer, metrics }
    }

    /// A decision the payment's state refuses (a capture of a voided payment, a
    /// void of a captured one: a coordinator bug) changes nothing; the record is
    /// answered as it is, so the caller sees the conflict, and it is logged here,
    /// loudly.
    async fn unchanged(&self, id: String, decision: &str) -> Result<Response<pb::PaymentRecord>, Status> {
        let lookup = id.clone();
        let payment = self.blocking(move |ledger| ledger.get(&lookup)).await?;
        let payment = payment.ok_or_else(|| Status::not_found(format!("no payment for order {id}")))?;
        tracing::error!(order_id = %id, decision, state = ?payment.state, "a decision contradicts the payment's state: not applied");
        Ok(Response::new(record(payment)))
    }

    /// Runs a blocking read on the blocking pool (writes go through the ledger's
    /// group commit, which has a thread of its own).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, Status> {
        let ledger = Arc::clone(&self.ledger);
        tokio::task::spawn_blocking(move || work(&ledger))
            .await
            .map_err(|e| Status::internal(format!("payment task failed: {e}")))?
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl PaymentApi for PaymentService {
    async fn prepare(&self, request: Request<pb::PaymentPrepareRequest>) -> Result<Response<pb::PaymentVote>, Status> {
        let request = request.into_inner();
        order_id(&request.order_id)?;
        let card = request.card.ok_or_else(|| Status::invalid_argument("prepare needs the card token"))?;
        if card.fingerprint.len() != 64 || card.last4.len() != 4 {
            return Err(Status::invalid_argument("the card token needs a 64-hex-digit fingerprint and 4 last digits"));
        }
        let hold = Hold {
            order_id: request.order_id,
            amount_cents: request.amount_cents,
            card_network: card.network,
            card_last4: card.last4,
        };
        let issuer = Arc::clone(&self.issuer);
        let fingerprint = card.fingerprint;
        let recorded = self.ledger.prepare(hold, move || issuer.authorize(&fingerprint)).await?;
        self.metrics.recorded(&recorded);
        let payment = recorded.payment;
        let yes = votes_yes(&payment);
        tracing::info!(order_id = %payment.order_id, state = ?payment.state, last4 = %payment.card_last4, "prepare");
        Ok(Response::new(pb::PaymentVote { yes, reason: payment.reason, code: payment.code }))
    }

    async fn commit(&self, request: Request<pb::PaymentDecision>) -> Result<Response<pb::PaymentRecord>, Status> {
        let id = order_id(&request.get_ref().order_id)?.to_owned();
        let recorded = match self.ledger.commit(&id).await {
            Err(LedgerError::Conflict { .. }) => return self.unchanged(id, "commit").await,
            recorded => recorded?,
        };
        self.metrics.recorded(&recorded);
        let payment = recorded.payment;
        tracing::info!(order_id = %payment.order_id, captures = payment.captures, "commit");
        Ok(Response::new(record(payment)))
    }

    async fn abort(&self, request: Request<pb::PaymentDecision>) -> Result<Response<pb::PaymentRecord>, Status> {
        let id = order_id(&request.get_ref().order_id)?.to_owned();
        let recorded = match self.ledger.abort(&id).await {
            Err(LedgerError::Conflict { .. }) => return self.unchanged(id, "abort").await,
            recorded => recorded?,
        };
        self.metrics.recorded(&recorded);
        let payment = recorded.payment;
        tracing::info!(order_id = %payment.order_id, state = ?payment.state, "abort");
        Ok(Response::new(record(payment)))
    }

    async fn get(&self, request: Request<pb::PaymentDecision>) -> Result<Response<pb::PaymentRecord>, Status> {
        let id = order_id(&request.get_ref().order_id)?.to_owned();
        let lookup = id.clone();
        let payment = self.blocking(move |ledger| ledger.get(&lookup)).await?;
        payment.map(record).map(Response::new).ok_or_else(|| Status::not_found(format!("no payment for order {id}")))
    }
}

impl From<PaymentState> for pb::PaymentState {
    fn from(state: PaymentState) -> Self {
        match state {
            PaymentState::Authorized => Self::Authorized,
            PaymentState::Captured => Self::Captured,
            PaymentState::Voided => Self::Voided,
            PaymentState::Declined => Self::Declined,
        }
    }
}
