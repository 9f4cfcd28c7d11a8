//! The services over real gRPC on loopback: health and reflection, the vector
//! clock discipline of events a–f and clear_order, and the queue's long poll,
//! acknowledgement and validation.

use std::time::Duration;

use proto::v1 as pb;
use services::fraud_detection::FraudConfig;
use testkit::service;
use tokio_stream::StreamExt;
use tonic::Code;

async fn transaction_verification() -> String {
    service::start_transaction_verification(Vec::new(), false).await.detach()
}

async fn fraud_detection() -> String {
    service::start_fraud_detection(FraudConfig::default()).await.detach()
}

async fn suggestions() -> String {
    service::start_suggestions().await.detach()
}

async fn order_queue(dir: &tempfile::TempDir) -> String {
    service::start_order_queue(dir.path().to_owned()).await.detach()
}

fn clock(entries: [u64; 3]) -> Option<pb::VectorClock> {
    Some(pb::VectorClock { entries: entries.to_vec() })
}

fn entries(clock: Option<pb::VectorClock>) -> Vec<u64> {
    clock.expect("a clock").entries
}

/// The services reflection lists through its version `$version` (`v1` or
/// `v1alpha`: the same messages in two packages), sorted.
macro_rules! listed {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        let list = MessageRequest::ListServices(String::new());
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(list) };
        let mut answers = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) = answers.next().await.unwrap().unwrap().message_response
        else {
            panic!("reflection {} did not list services", stringify!($version));
        };
        let mut listed: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
        listed.sort();
        listed
    }};
}

#[tokio::test]
async fn every_service_answers_health_checks_and_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let services = [
        (transaction_verification().await, "bookstore.v1.TransactionVerification"),
        (fraud_detection().await, "bookstore.v1.FraudDetection"),
        (suggestions().await, "bookstore.v1.Suggestions"),
        (order_queue(&dir).await, "bookstore.v1.OrderQueue"),
        (payment(&dir, &platform::card_token::FingerprintKey::new("k")).await, "bookstore.v1.Payment"),
    ];
    for (url, name) in services {
        let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest { service: name.into() })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32, "{name}");

        // Reflection, in both versions (Postman and older grpcurl ask v1alpha
        // first), lists exactly what this port serves.
        let verifies = !matches!(name, "bookstore.v1.OrderQueue" | "bookstore.v1.Payment");
        let mut expected = vec![
            name.to_owned(),
            "grpc.health.v1.Health".to_owned(),
            "grpc.reflection.v1.ServerReflection".to_owned(),
            "grpc.reflection.v1alpha.ServerReflection".to_owned(),
        ];
        if verifies {
            expected.push("bookstore.v1.OrderCache".to_owned());
        }
        expected.sort();
        assert_eq!(listed!(v1, channel.clone()), expected, "{name}");
        assert_eq!(listed!(v1alpha, channel.clone()), expected, "{name}");
        // The three verification services serve the one OrderCache beside their own.
        let mut cache = pb::order_cache_client::OrderCacheClient::new(channel);
        match cache.cached_orders(pb::CachedOrdersRequest {}).await {
            Ok(answer) => assert!(verifies && answer.into_inner().count == 0, "{name}"),
            Err(status) => assert!(!verifies && status.code() == Code::Unimplemented, "{name}: {status:?}"),
        }
    }
}

use testkit::seed;

#[tokio::test]
async fn events_a_to_f_carry_and_merge_clocks_up_to_3_2_1() {
    use pb::fraud_detection_client::FraudDetectionClient;
    use pb::order_cache_client::OrderCacheClient;
    use pb::suggestions_client::SuggestionsClient;
    use pb::transaction_verification_client::TransactionVerificationClient;
    let urls = [transaction_verification().await, fraud_detection().await, suggestions().await];
    let mut tv = TransactionVerificationClient::connect(urls[0].clone()).await.unwrap();
    let mut fd = FraudDetectionClient::connect(urls[1].clone()).await.unwrap();
    let mut sg = SuggestionsClient::connect(urls[2].clone()).await.unwrap();
    // The same OrderCache service on each of the three.
    let mut caches = Vec::new();
    for url in &urls {
        caches.push(OrderCacheClient::connect(url.clone()).await.unwrap());
    }
    let id = "order-1".to_owned();
    let init = || pb::InitOrderRequest { order_id: id.clone(), order: Some(seed::order()) };
    for cache in &mut caches {
        assert_eq!(entries(cache.init_order(init()).await.unwrap().into_inner().clock), [0, 0, 0]);
    }
    let event = |c: [u64; 3]| pb::EventRequest { order_id: id.clone(), clock: clock(c) };

    let a = tv.verify_items(event([0, 0, 0])).await.unwrap().into_inner();
    assert!(a.refusal.is_none());
    assert_eq!(entries(a.clock), [1, 0, 0]);
    let b = tv.verify_user_data(event([0, 0, 0])).await.unwrap().into_inner();
    assert_eq!(entries(b.clock), [2, 0, 0]);
    let c = tv.verify_card_format(event([1, 0, 0])).await.unwrap().into_inner();
    assert_eq!(entries(c.clock), [3, 0, 0], "c merges a's clock into TV's own [2,0,0] and ticks");
    let d = fd.check_user(event([2, 0, 0])).await.unwrap().into_inner();
    assert_eq!(entries(d.clock), [2, 1, 0]);
    let e = fd.check_card(event([3, 1, 0])).await.unwrap().into_inner();
    assert!(e.refusal.is_none());
    assert_eq!(entries(e.clock), [3, 2, 0]);
    let f = sg.suggest(event([3, 2, 0])).await.unwrap().into_inner();
    assert_eq!(entries(f.clock), [3, 2, 1]);
    assert_eq!(f.books.len(), 3);

    // A final clock that misses FD's events is an anomaly: FD keeps its copy.
    let clear = |c: [u64; 3]| pb::ClearOrderRequest {
        order_id: id.clone(),
        final_clock: clock(c),
        result: pb::CheckoutResult::Approved.into(),
    };
    let anomaly = caches[1].clear_order(clear([3, 1, 0])).await.unwrap().into_inner();
    assert!(!anomaly.cleared && anomaly.anomaly.contains("[3,2,0]"), "{anomaly:?}");
    assert_eq!(caches[1].cached_orders(pb::CachedOrdersRequest {}).await.unwrap().into_inner().count, 1);
    for cache in &mut caches {
        let response = cache.clear_order(clear([3, 2, 1])).await.unwrap().into_inner();
        assert!(response.cleared, "{response:?}");
        assert_eq!(cache.cached_orders(pb::CachedOrdersRequest {}).await.unwrap().into_inner().count, 0);
    }
    let gone = tv.verify_items(event([0, 0, 0])).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_malformed_clock_is_an_invalid_argument() {
    let url = transaction_verification().await;
    let mut tv =
        pb::transaction_verification_client::TransactionVerificationClient::connect(url.clone()).await.unwrap();
    let mut cache = pb::order_cache_client::OrderCacheClient::connect(url).await.unwrap();
    cache.init_order(pb::InitOrderRequest { order_id: "o".into(), order: Some(seed::order()) }).await.unwrap();
    let status = tv
        .verify_items(pb::EventRequest { order_id: "o".into(), clock: Some(pb::VectorClock { entries: vec![1, 2] }) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

fn queued(id: &str, client_card: impl Into<i32>) -> pb::EnqueueRequest {
    pb::EnqueueRequest {
        order: Some(pb::QueuedOrder {
            order_id: id.into(),
            client_card: client_card.into(),
            lines: vec![pb::OrderLine { book_id: "4".into(), quantity: 1 }],
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn a_long_polling_dequeue_wakes_when_an_order_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let url = order_queue(&dir).await;
    let mut consumer = pb::order_queue_client::OrderQueueClient::connect(url.clone()).await.unwrap();
    let waiting = tokio::spawn(async move {
        consumer
            .dequeue(pb::DequeueRequest { wait_ms: 20_000, lease_ms: 5_000, consumer: "test".into(), leader_term: 0 })
            .await
            .unwrap()
            .into_inner()
    });
    let mut producer = pb::order_queue_client::OrderQueueClient::connect(url).await.unwrap();
    // Let the consumer start waiting; if the order lands first, it is served at once anyway.
    tokio::task::yield_now().await;
    producer.enqueue(queued("o1", pb::ClientCard::Basic)).await.unwrap();
    let delivery =
        tokio::time::timeout(Duration::from_secs(15), waiting).await.expect("woken long before the wait ends").unwrap();
    assert_eq!(delivery.order.unwrap().order_id, "o1");
    assert_eq!(delivery.delivery_count, 1);
    producer.ack(pb::AckRequest { order_id: "o1".into(), lease_id: delivery.lease_id.clone() }).await.unwrap();
    let stale = producer.ack(pb::AckRequest { order_id: "o2".into(), lease_id: "nope".into() }).await.unwrap_err();
    assert_eq!(stale.code(), Code::NotFound);
    let stats = producer.stats(pb::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!((stats.premium, stats.basic, stats.none, stats.leased), (0, 0, 0, 0));
}

#[tokio::test]
async fn the_queue_refuses_unknown_priorities_unreadable_lines_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut queue = pb::order_queue_client::OrderQueueClient::connect(order_queue(&dir).await).await.unwrap();
    for unreadable in [pb::ClientCard::Unspecified as i32, 99] {
        assert_eq!(queue.enqueue(queued("o1", unreadable)).await.unwrap_err().code(), Code::InvalidArgument);
    }
    let with_lines = |lines: Vec<pb::OrderLine>| {
        let mut request = queued("o1", pb::ClientCard::Basic);
        request.order.as_mut().unwrap().lines = lines;
        request
    };
    for lines in [vec![], vec![pb::OrderLine { book_id: "4".into(), quantity: 0 }]] {
        let refused = queue.enqueue(with_lines(lines)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    assert!(!queue.enqueue(queued("o1", pb::ClientCard::Premium)).await.unwrap().into_inner().duplicate);
    assert!(queue.enqueue(queued("o1", pb::ClientCard::Premium)).await.unwrap().into_inner().duplicate);
    let stats = queue.stats(pb::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.premium, 1);
    let empty = queue
        .dequeue(pb::DequeueRequest { wait_ms: 0, lease_ms: 0, consumer: String::new(), leader_term: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.order.unwrap().order_id, "o1");
    let none = queue
        .dequeue(pb::DequeueRequest { wait_ms: 0, lease_ms: 0, consumer: String::new(), leader_term: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(none.order.is_none());
}

#[tokio::test]
async fn a_take_over_fences_out_a_deposed_leader_and_a_release_gives_an_order_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut queue = pb::order_queue_client::OrderQueueClient::connect(order_queue(&dir).await).await.unwrap();
    queue.enqueue(queued("o1", pb::ClientCard::Basic)).await.unwrap();
    let dequeue = |consumer: &str, leader_term| pb::DequeueRequest {
        wait_ms: 0,
        lease_ms: 60_000,
        consumer: consumer.into(),
        leader_term,
    };
    let taken = queue.dequeue(dequeue("leader-1", 1)).await.unwrap().into_inner();
    let take_over = |consumer: &str, leader_term| pb::TakeOverRequest { consumer: consumer.into(), leader_term };
    assert_eq!(queue.take_over(take_over("leader-2", 2)).await.unwrap().into_inner().released, 1);
    let refused = queue.dequeue(dequeue("leader-1", 1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(queue.take_over(take_over("leader-1", 1)).await.unwrap_err().code(), Code::FailedPrecondition);
    let stale = pb::ReleaseRequest { order_id: "o1".into(), lease_id: taken.lease_id };
    assert_eq!(queue.release(stale).await.unwrap_err().code(), Code::FailedPrecondition, "that lease ended");

    let again = queue.dequeue(dequeue("leader-2", 2)).await.unwrap().into_inner();
    assert_eq!(again.delivery_count, 2);
    queue.release(pb::ReleaseRequest { order_id: "o1".into(), lease_id: again.lease_id }).await.unwrap();
    let lookup = queue.lookup(pb::LookupRequest { order_id: "o1".into() }).await.unwrap().into_inner();
    assert_eq!(lookup.state(), pb::QueueState::Queued, "released: ready again at once");
    let empty_name = queue.take_over(take_over("", 3)).await.unwrap_err();
    assert_eq!(empty_name.code(), Code::InvalidArgument);
}

async fn payment(dir: &tempfile::TempDir, key: &platform::card_token::FingerprintKey) -> String {
    service::start_payment(&dir.path().join("payments.redb"), key.clone()).await.detach()
}

#[tokio::test]
async fn payment_authorizes_captures_once_and_declines_the_test_cards() {
    use platform::card_token::FingerprintKey;
    let dir = tempfile::tempdir().unwrap();
    let key = FingerprintKey::new("test-key");
    let mut payment = pb::payment_client::PaymentClient::connect(payment(&dir, &key).await).await.unwrap();
    let expiry = platform::clock::this_month().plus_months(12).to_string();
    let token = |number: &str| {
        let card = domain::CardNumber::parse(number).unwrap();
        key.token(&card, domain::Expiry::parse(&expiry, platform::clock::this_month()).unwrap())
    };
    let prepare = |id: &str, number: &str| pb::PaymentPrepareRequest {
        order_id: id.into(),
        amount_cents: 3497,
        card: Some(token(number)),
    };
    let decision = |id: &str| pb::PaymentDecision { order_id: id.into() };

    let vote = payment.prepare(prepare("paid", "4716401589806287")).await.unwrap().into_inner();
    assert!(vote.yes, "{vote:?}");
    let captured = payment.commit(decision("paid")).await.unwrap().into_inner();
    assert_eq!(
        (captured.state(), captured.captures, captured.card_last4.as_str()),
        (pb::PaymentState::Captured, 1, "6287")
    );
    assert_eq!(payment.commit(decision("paid")).await.unwrap().into_inner().captures, 1);
    // A void of a captured payment changes nothing and is answered with the
    // record as it is (an answer, not an error: the caller sees the conflict).
    let unchanged = payment.abort(decision("paid")).await.unwrap().into_inner();
    assert_eq!((unchanged.state(), unchanged.captures), (pb::PaymentState::Captured, 1));
    assert_eq!(payment.commit(decision("never")).await.unwrap_err().code(), Code::NotFound);

    let declined = payment.prepare(prepare("declined", "4000000000000002")).await.unwrap().into_inner();
    assert_eq!(
        (declined.yes, declined.code.as_str(), declined.reason.as_str()),
        (false, "card_declined", "card declined")
    );
    let broke = payment.prepare(prepare("broke", "4000000000009995")).await.unwrap().into_inner();
    assert_eq!((broke.yes, broke.code.as_str()), (false, "insufficient_funds"));
    assert_eq!(payment.abort(decision("declined")).await.unwrap().into_inner().state(), pb::PaymentState::Declined);

    let missing = payment
        .prepare(pb::PaymentPrepareRequest { order_id: "x".into(), amount_cents: 1, card: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_decision_against_the_payments_state_is_answered_once_and_not_sent_again() {
    use services::order_executor::coordinator::{Participant, Vote};
    use services::order_executor::participants::PaymentParticipant;
    use services::order_executor::state::Execution;
    let dir = tempfile::tempdir().unwrap();
    let key = platform::card_token::FingerprintKey::new("test-key");
    let url = payment(&dir, &key).await;
    let deadline = Duration::from_secs(2);
    let participant = PaymentParticipant::new(platform::grpc::channel(&url, deadline).unwrap(), deadline);
    let execution = Execution {
        order_id: "paid".into(),
        lines: Vec::new(),
        total_cents: 3497,
        card_network: "visa".into(),
        card_last4: "6287".into(),
        card_fingerprint: "a".repeat(64),
        lease_id: "lease".into(),
        checkout_events: Vec::new(),
        client_card: None,
        accepted_at_ms: 0,
        started: None,
        trace_context: Default::default(),
    };
    assert_eq!(participant.prepare(&execution).await.unwrap(), Vote::Yes);
    participant.commit("paid").await.expect("captured");
    // A void of the captured payment, and a capture of a payment never
    // prepared: conflicts (a coordinator bug), answered and acknowledged, so the
    // coordinator does not resend them forever; nothing changes.
    participant.abort("paid").await.expect("a conflict is acknowledged, not unreachable");
    participant.commit("never").await.expect("a conflict is acknowledged, not unreachable");
    let mut client = pb::payment_client::PaymentClient::connect(url).await.unwrap();
    let record = client.get(pb::PaymentDecision { order_id: "paid".into() }).await.unwrap().into_inner();
    assert_eq!((record.state(), record.captures), (pb::PaymentState::Captured, 1));
}
