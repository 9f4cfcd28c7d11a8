//! The checkout orchestration, shared by the `checkout` server function and
//! `POST /checkout`.
//!
//! 1. `init_order` to transaction_verification (TV), fraud_detection (FD) and
//!    suggestions (SG) in parallel.
//! 2. Events with vector clocks: a→c (TV: items, then card format) and b→d (TV:
//!    user data, then FD: user) concurrently; e (FD: card) after c and d; f (SG)
//!    after e. An approved order ends at `[3,2,1]`, which is checked.
//! 3. Fail fast, with a fixed precedence (`precedence.rs`): when both chains
//!    refuse, the shopper's own input wins over stock, and stock over fraud, so the
//!    answer does not depend on which chain was quicker; a step starts only while
//!    it could still give a winning refusal (a call already in flight is let
//!    finish, so its clock is known).
//! 4. Approved: enqueue (priority by client card).
//! 5. Always: `clear_order` with the final clock — the merge of every clock seen —
//!    and how the checkout ended to every service that cached the order.
//!
//! No sleeps and no polling: a checkout on loopback takes a few milliseconds.
//!
//! The checkout is one span of the request's trace; each call carries its
//! context, so each service's span is its child; the enqueue is the producer of
//! the order's message, whose trace context the queued order carries, so its
//! execution continues the same trace. Every checkout is counted and timed
//! (`metrics.rs`).

mod admission;
mod clients;
mod metrics;
pub mod order;
mod precedence;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use domain::checkout::{ApprovedOrder, CheckoutRequest, SuggestedBook};
use domain::journey::CheckoutEvent;
use domain::{Catalog, CheckoutOutcome, Refusal, RefusalClass, Step, VectorClock, Verifier};
use opentelemetry::trace::{FutureExt as _, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use platform::card_token::FingerprintKey;
use platform::clock::unix_ms;
use platform::metrics::Registry;
use platform::telemetry::{context, spans};
use proto::enums::refusal_class_from_proto;
use proto::journey::checkout_event_to_proto;
use proto::v1 as pb;
use proto::vector_clock::{clock_from_proto, clock_to_proto};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use admission::Admission;
pub use admission::Limits;
pub use clients::{Clients, ORDER_QUEUE};
use metrics::CheckoutMetrics;

/// How long a checkout whose enqueue got no answer keeps asking the queue to
/// withdraw the order before it tells the shopper the order is unconfirmed: long
/// enough to outlast a queue's restart or a pause of a few seconds.
const WITHDRAW_FOR: std::time::Duration = std::time::Duration::from_secs(6);
/// The pause between two such asks.
const WITHDRAW_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

pub struct Orchestrator {
    /// A place per checkout in progress, as many as the adaptive limit allows
    /// (`admission.rs`): when none is left, a checkout is refused at once (`busy`)
    /// instead of queueing behind the others until every one of them misses its
    /// deadline.
    admission: Admission,
    clients: Clients,
    catalog: Arc<Catalog>,
    fingerprint_key: FingerprintKey,
    metrics: CheckoutMetrics,
}

/// What the orchestrator knows while the events run.
#[derive(Default)]
struct Flow {
    /// The merge of every clock received.
    known: Mutex<VectorClock>,
    /// The refusal that wins so far (`precedence`); while set, only the steps that
    /// could still give a winning one start.
    refusal: Mutex<Option<Refusal>>,
    /// The events as they ended: the start of the order's journey.
    events: Mutex<Vec<CheckoutEvent>>,
}

impl Flow {
    fn observe(&self, clock: &VectorClock) {
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).merge(clock);
    }

    fn known(&self) -> VectorClock {
        *self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refuse(&self, refusal: Refusal) {
        let mut held = self.refusal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Some(precedence::winner(held.take(), refusal));
    }

    fn refusal(&self) -> Option<Refusal> {
        self.refusal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Notes how event `step` ended: the clock it answered (if any) and its refusal.
    fn ended(&self, step: Step, service: &str, clock: Option<VectorClock>, refusal: Option<&str>) {
        let event = CheckoutEvent {
            step,
            service: service.to_owned(),
            clock,
            at_ms: unix_ms(),
            refusal: refusal.map(str::to_owned),
        };
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event);
    }

    fn events(&self) -> Vec<CheckoutEvent> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn may_start(&self, step: Step) -> bool {
        precedence::may_start(step, self.refusal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref())
    }
}

/// Which verification services hold a copy of the order, by `Verifier::index`.
type Cached = [bool; Verifier::COUNT];

impl Orchestrator {
    /// The orchestrator over `clients`, counting its checkouts in `metrics`.
    pub fn new(clients: Clients, catalog: Arc<Catalog>, fingerprint_key: FingerprintKey, metrics: &Registry) -> Self {
        Self {
            admission: Admission::new(Limits::adaptive(crate::config::DEFAULT_CHECKOUT_CONCURRENCY, None)),
            clients,
            catalog,
            fingerprint_key,
            metrics: CheckoutMetrics::register(metrics),
        }
    }

    /// The orchestrator admitting checkouts within `limits`.
    pub fn admitting(self, limits: Limits) -> Self {
        self.metrics.admission_limit(limits.ceiling);
        Self { admission: Admission::new(limits), ..self }
    }

    /// The gRPC clients a checkout calls through.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub async fn checkout(&self, request: CheckoutRequest) -> CheckoutOutcome {
        // Beyond capacity, the surplus is refused before anything is done for it.
        let Some(admitted) = self.admission.try_admit() else {
            let refusal = Refusal::busy();
            self.metrics.shed(&refusal);
            return CheckoutOutcome::Refused(refusal);
        };
        let order_id = uuid::Uuid::new_v4().to_string();
        let logs = tracing::info_span!("checkout", %order_id);
        let trace = spans::start_here(|tracer| {
            tracer.span_builder("checkout").with_attributes([KeyValue::new("order.id", order_id.clone())])
        });
        let started = Instant::now();
        let checkout = self.run(&order_id, &request).instrument(logs.clone());
        let outcome = match &trace {
            Some(cx) => checkout.with_context(cx.clone()).await,
            None => checkout.await,
        };
        let elapsed = started.elapsed();
        if matches!(outcome, CheckoutOutcome::Approved(_)) {
            admitted.approved(elapsed);
            self.metrics.admission_limit(self.admission.limit());
        } else {
            drop(admitted);
        }
        let elapsed_us = elapsed.as_micros() as u64;
        logs.in_scope(|| match &outcome {
            CheckoutOutcome::Approved(_) => tracing::info!(elapsed_us, "approved"),
            CheckoutOutcome::Refused(refusal) => tracing::info!(
                elapsed_us,
                step = %refusal.step,
                service = %refusal.service,
                code = %refusal.code,
                "refused"
            ),
        });
        if let Some(cx) = &trace {
            let span = cx.span();
            match &outcome {
                CheckoutOutcome::Approved(_) => span.set_attribute(KeyValue::new("checkout.outcome", "approved")),
                CheckoutOutcome::Refused(refusal) => span.set_attributes([
                    KeyValue::new("checkout.outcome", "refused"),
                    KeyValue::new("checkout.step", refusal.step.as_str()),
                    KeyValue::new("checkout.refusal_code", refusal.code.clone()),
                ]),
            }
            span.end();
        }
        self.metrics.ended(&outcome, elapsed, trace.as_ref());
        outcome
    }

    async fn run(&self, order_id: &str, request: &CheckoutRequest) -> CheckoutOutcome {
        let order = order::to_verification_order(request);
        let flow = Flow::default();
        let (cached, initialised) = self.init_all(order_id, &order).await;
        let result = match initialised {
            Err(refusal) => Err(refusal),
            Ok(()) => match self.verify(order_id, &flow).await {
                Ok(books) => self.enqueue(order_id, request, &flow.events()).await.map(|()| books),
                Err(refusal) => Err(refusal),
            },
        };
        self.clear_all(order_id, flow.known(), checkout_result(&result), cached).await;
        match result {
            Ok(suggested_books) => CheckoutOutcome::Approved(ApprovedOrder {
                order_id: order_id.to_owned(),
                status: "queued".to_owned(),
                suggested_books,
            }),
            Err(refusal) => CheckoutOutcome::Refused(refusal),
        }
    }

    /// Step 1: hand the order to the three services at once.
    async fn init_all(&self, order_id: &str, order: &pb::Order) -> (Cached, Result<(), Refusal>) {
        let c = &self.clients;
        let answers = futures::future::join_all(Verifier::ALL.map(|verifier| {
            // Suggestions needs only the books.
            let order = match verifier {
                Verifier::Suggestions => order::to_suggestions_order(order),
                Verifier::TransactionVerification | Verifier::FraudDetection => order.clone(),
            };
            let request = c.request(pb::InitOrderRequest { order_id: order_id.to_owned(), order: Some(order) });
            let mut cache = c.order_caches[verifier.index()].clone();
            async move { c.call(Step::InitOrder, verifier.name(), cache.init_order(request)).await }
        }))
        .await;
        let cached = Verifier::ALL.map(|verifier| answers[verifier.index()].is_ok());
        let outcome = answers.into_iter().find_map(Result::err).map_or(Ok(()), Err);
        (cached, outcome)
    }

    /// Step 2: events a–f. Answers the suggestions of an approved order.
    async fn verify(&self, order_id: &str, flow: &Flow) -> Result<Vec<SuggestedBook>, Refusal> {
        let start = VectorClock::default();
        let tv = &self.clients.transaction_verification;
        let fd = &self.clients.fraud_detection;
        let items_then_card = async {
            let a = self
                .event(flow, order_id, Step::VerifyItems, Verifier::TransactionVerification, start, |r| {
                    let mut tv = tv.clone();
                    async move { tv.verify_items(r).await }
                })
                .await?;
            self.event(flow, order_id, Step::VerifyCardFormat, Verifier::TransactionVerification, a, |r| {
                let mut tv = tv.clone();
                async move { tv.verify_card_format(r).await }
            })
            .await
        };
        let user_then_fraud = async {
            let b = self
                .event(flow, order_id, Step::VerifyUserData, Verifier::TransactionVerification, start, |r| {
                    let mut tv = tv.clone();
                    async move { tv.verify_user_data(r).await }
                })
                .await?;
            self.event(flow, order_id, Step::CheckUser, Verifier::FraudDetection, b, |r| {
                let mut fd = fd.clone();
                async move { fd.check_user(r).await }
            })
            .await
        };
        let (c, d) = tokio::join!(items_then_card, user_then_fraud);
        if let Some(refusal) = flow.refusal() {
            return Err(refusal);
        }
        let (Some(c), Some(d)) = (c, d) else {
            return Err(internal(Step::VerifyItems, "a chain stopped without a refusal"));
        };
        let e = self
            .event(flow, order_id, Step::CheckCard, Verifier::FraudDetection, c.merged(&d), |r| {
                let mut fd = fd.clone();
                async move { fd.check_card(r).await }
            })
            .await
            .ok_or_else(|| flow.refusal().unwrap_or_else(|| internal(Step::CheckCard, "stopped without a refusal")))?;
        let (f, books) = self.suggest(order_id, e).await.inspect_err(|refusal| {
            flow.ended(Step::SuggestBooks, Verifier::Suggestions.name(), None, Some(&refusal.code));
        })?;
        flow.observe(&f);
        flow.ended(Step::SuggestBooks, Verifier::Suggestions.name(), Some(f), None);
        if f != VectorClock::APPROVED {
            tracing::error!(clock = %f, expected = %VectorClock::APPROVED, "the final clock of an approved order is wrong");
            return Err(internal(Step::SuggestBooks, "the verification steps did not run in the expected order"));
        }
        Ok(books)
    }

    /// One vector-clocked event, unless the flow has stopped. `None` when it did
    /// not run or refused (the refusal is in `flow`).
    async fn event<F, Fut>(
        &self,
        flow: &Flow,
        order_id: &str,
        step: Step,
        verifier: Verifier,
        clock: VectorClock,
        call: F,
    ) -> Option<VectorClock>
    where
        F: FnOnce(Request<pb::EventRequest>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<pb::EventResponse>, Status>>,
    {
        if !flow.may_start(step) {
            return None;
        }
        let service = verifier.name();
        let request = self
            .clients
            .request(pb::EventRequest { order_id: order_id.to_owned(), clock: Some(clock_to_proto(clock)) });
        let response = match self.clients.call(step, service, call(request)).await {
            Ok(response) => response,
            Err(refusal) => {
                flow.ended(step, service, None, Some(&refusal.code));
                flow.refuse(refusal);
                return None;
            }
        };
        let Ok(clock) = clock_from_proto(response.clock.as_ref()) else {
            let refusal = Refusal::unavailable(step, service, "the service answered with a malformed clock");
            flow.ended(step, service, None, Some(&refusal.code));
            flow.refuse(refusal);
            return None;
        };
        flow.observe(&clock);
        flow.ended(step, service, Some(clock), response.refusal.as_ref().map(|refusal| refusal.code.as_str()));
        if let Some(refusal) = response.refusal {
            flow.refuse(refusal_from_proto(step, service, refusal));
            return None;
        }
        Some(clock)
    }

    /// Event f.
    async fn suggest(&self, order_id: &str, clock: VectorClock) -> Result<(VectorClock, Vec<SuggestedBook>), Refusal> {
        let request = self
            .clients
            .request(pb::EventRequest { order_id: order_id.to_owned(), clock: Some(clock_to_proto(clock)) });
        let mut suggestions = self.clients.suggestions.clone();
        let response =
            self.clients.call(Step::SuggestBooks, Verifier::Suggestions.name(), suggestions.suggest(request)).await?;
        let clock = clock_from_proto(response.clock.as_ref()).map_err(|_| {
            Refusal::unavailable(
                Step::SuggestBooks,
                Verifier::Suggestions.name(),
                "the service answered with a malformed clock",
            )
        })?;
        let books = response
            .books
            .into_iter()
            .map(|book| SuggestedBook { book_id: book.book_id, title: book.title, author: book.author })
            .collect();
        Ok((clock, books))
    }

    /// Step 4: the order, as a message to the executors, sent in a producer span
    /// whose trace context the order carries (OpenTelemetry's messaging
    /// conventions), so its execution continues this trace.
    async fn enqueue(
        &self,
        order_id: &str,
        request: &CheckoutRequest,
        events: &[CheckoutEvent],
    ) -> Result<(), Refusal> {
        let mut queued = order::to_queued_order(order_id, request, &self.catalog, &self.fingerprint_key, unix_ms())
            .map_err(|error| Refusal::invalid_field(Step::Enqueue, "web", error))?;
        queued.checkout_events = events.iter().map(checkout_event_to_proto).collect();
        let send = spans::start_here(|tracer| {
            tracer.span_builder("send orders").with_kind(SpanKind::Producer).with_attributes([
                KeyValue::new("messaging.system", "bookstore"),
                KeyValue::new("messaging.destination.name", "orders"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.operation.name", "enqueue"),
                KeyValue::new("messaging.message.id", order_id.to_owned()),
                KeyValue::new("order.id", order_id.to_owned()),
            ])
        });
        let _sending = send.as_ref().map(|cx| cx.clone().attach());
        queued.trace_context = context::carrier();
        let request = self.clients.request(pb::EnqueueRequest { order: Some(queued) });
        drop(_sending);
        let mut queue = self.clients.order_queue.clone();
        let enqueue = self.clients.call_raw(ORDER_QUEUE, queue.enqueue(request));
        let enqueued = match &send {
            Some(cx) => enqueue.with_context(cx.clone()).await,
            None => enqueue.await,
        };
        if let Some(cx) = &send {
            cx.span().end();
        }
        match enqueued {
            Ok(answer) if answer.withdrawn => {
                Err(Refusal::unavailable(Step::Enqueue, ORDER_QUEUE, "the order was withdrawn"))
            }
            Ok(_) => Ok(()),
            Err(failure) if clients::did_nothing(&failure) => {
                Err(Refusal::unavailable(Step::Enqueue, ORDER_QUEUE, clients::describe(&failure)))
            }
            Err(failure) => self.withdraw(order_id, &failure).await,
        }
    }

    /// The enqueue got no answer, so the order may or may not be queued (a paused
    /// queue reads the request when it wakes): take it back, so that what the
    /// shopper is told is true either way. Withdrawn: unavailable, nothing charged
    /// and nothing ever will be. Already taken by the executors: it goes through,
    /// approved. The queue unreachable for all of [`WITHDRAW_FOR`]: unconfirmed,
    /// with the order's id to look it up.
    async fn withdraw(&self, order_id: &str, failure: &platform::grpc::CallFailure) -> Result<(), Refusal> {
        tracing::warn!(%order_id, %failure, "the enqueue got no answer: withdrawing the order");
        let until = Instant::now() + WITHDRAW_FOR;
        loop {
            let mut queue = self.clients.order_queue.clone();
            let request = self.clients.request(pb::WithdrawRequest { order_id: order_id.to_owned() });
            let answer = self.clients.call_raw(ORDER_QUEUE, queue.withdraw(request)).await;
            match answer.map(|answer| answer.outcome()) {
                Ok(pb::WithdrawOutcome::Withdrawn) => {
                    tracing::info!(%order_id, "withdrawn: the shopper is told it was not placed");
                    return Err(Refusal::unavailable(Step::Enqueue, ORDER_QUEUE, clients::describe(failure)));
                }
                Ok(pb::WithdrawOutcome::Taken) => {
                    tracing::info!(%order_id, "not withdrawn: the executors have it, so it is approved");
                    return Ok(());
                }
                Ok(pb::WithdrawOutcome::Unspecified) | Err(_) => {}
            }
            if Instant::now() >= until {
                tracing::error!(%order_id, "the queue could not be asked to withdraw the order: unconfirmed");
                return Err(Refusal::unconfirmed(Step::Enqueue, ORDER_QUEUE, order_id));
            }
            tokio::time::sleep(WITHDRAW_PAUSE).await;
        }
    }

    /// Step 5: every service that cached the order forgets it. Failures are
    /// logged; the services' time-to-live cleans up what a lost call leaves.
    async fn clear_all(&self, order_id: &str, final_clock: VectorClock, result: pb::CheckoutResult, cached: Cached) {
        let c = &self.clients;
        let holders = Verifier::ALL.into_iter().filter(|verifier| cached[verifier.index()]);
        futures::future::join_all(holders.map(|verifier| async move {
            let request = c.request(pb::ClearOrderRequest {
                order_id: order_id.to_owned(),
                final_clock: Some(clock_to_proto(final_clock)),
                result: result.into(),
            });
            let mut cache = c.order_caches[verifier.index()].clone();
            let service = verifier.name();
            match c.call_raw(service, cache.clear_order(request)).await {
                Ok(response) if response.cleared => {}
                Ok(response) => {
                    tracing::warn!(service, anomaly = %response.anomaly, %final_clock, "clear_order anomaly")
                }
                Err(_) => tracing::warn!(service, "clear_order failed; the service drops the copy when it expires"),
            }
        }))
        .await;
    }
}

/// How the checkout ended, for clear_order.
fn checkout_result<T>(result: &Result<T, Refusal>) -> pb::CheckoutResult {
    match result {
        Ok(_) => pb::CheckoutResult::Approved,
        // The queue may have stored the order before the deadline ran out.
        Err(refusal) if refusal.step == Step::Enqueue && refusal.class == RefusalClass::Unavailable => {
            pb::CheckoutResult::Undecided
        }
        Err(refusal) => match refusal.class {
            RefusalClass::Invalid => pb::CheckoutResult::Invalid,
            RefusalClass::OutOfStock => pb::CheckoutResult::OutOfStock,
            RefusalClass::Fraud => pb::CheckoutResult::Fraud,
            RefusalClass::Unavailable => pb::CheckoutResult::Unavailable,
        },
    }
}

/// A refusal whose class this version cannot read is not guessed at: it is a fault.
fn refusal_from_proto(step: Step, service: &str, refusal: pb::Refusal) -> Refusal {
    match refusal_class_from_proto("Refusal.class", refusal.class) {
        Ok(class) => Refusal {
            step,
            service: service.to_owned(),
            class,
            code: refusal.code,
            message: refusal.message,
            field: Some(refusal.field).filter(|field| !field.is_empty()),
        },
        Err(unreadable) => internal(step, &format!("{service} answered a refusal: {unreadable}")),
    }
}

/// A fault of ours, not the shopper's: answered like an unavailable service.
fn internal(step: Step, detail: &str) -> Refusal {
    tracing::error!(step = %step, detail, "checkout orchestration fault");
    Refusal { code: "internal_error".to_owned(), ..Refusal::unavailable(step, "web", "an internal error") }
}
