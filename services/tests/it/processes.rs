//! The execution side as real processes of the `services` binary, killed with
//! SIGKILL while orders flow: the invariants of two-phase commit must hold across
//! crashes, not only across graceful stops.

use std::path::Path;

use proto::v1 as pb;

use testkit::processes::{ExecutionSide, Workdir};

const CARD: &str = "4716401589806287";

#[tokio::test]
async fn kill_9_of_each_leader_and_the_queue_while_orders_flow_loses_none_and_charges_none_twice() {
    let workdir = Workdir::new();
    let dir = workdir.path().to_owned();
    let mut side = ExecutionSide::start(Path::new(env!("CARGO_BIN_EXE_services")), &dir);
    let order_ids: Vec<String> = (0..30).map(|i| format!("crash-{i}")).collect();
    for order_id in &order_ids[..10] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    side.final_status(&order_ids[0]).await;

    let executor_leader = side.executors.leader().await;
    side.executors.kill(executor_leader);
    for order_id in &order_ids[10..20] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    let books_leader = side.books_db.leader().await;
    side.books_db.kill(books_leader);
    for order_id in &order_ids[20..] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    // The queue dies with orders in it and comes back from its file.
    side.queue.kill();
    side.queue.restart();

    let mut committed = Vec::new();
    for order_id in &order_ids {
        let status = side.final_status(order_id).await;
        let payment = side.payment(order_id).await;
        match status.status() {
            pb::OrderState::Committed => {
                committed.push(order_id.clone());
                assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Captured, 1), "{order_id}");
            }
            _ => assert_eq!(payment.captures, 0, "{order_id}: {status:?} {payment:?}"),
        }
    }
    // Only an order in flight at a kill may abort. Orders enqueued after the
    // executor leader died committed, so another replica took over and led.
    let after_the_kill = committed.iter().filter(|id| order_ids[10..].contains(id)).count();
    assert!(after_the_kill >= 18, "{after_the_kill} of the 20 orders after the kill committed: {committed:?}");
    let committed = committed.len() as u32;

    // The killed replicas come back on their data and catch up.
    side.executors.restart(executor_leader);
    side.books_db.restart(books_leader);
    assert_eq!(side.stock_everywhere("4").await, 60 - committed, "stock on all three books_db replicas");
    side.executors.caught_up().await;
}

#[tokio::test]
async fn every_write_answered_before_a_kill_9_of_the_queue_and_payment_is_there_after_it() {
    use std::sync::{Arc, Mutex};
    use testkit::processes::{free_port, service_process, url};

    let workdir = Workdir::new();
    let dir = workdir.path().to_owned();
    let binary = Path::new(env!("CARGO_BIN_EXE_services"));
    let start = |name: &str, port: u16| {
        let args = vec![
            name.replace('_', "-"),
            format!("--listen=127.0.0.1:{port}"),
            format!("--data-dir={}", dir.join(name).display()),
        ];
        let (mut process, _) = service_process(binary, name, args, &dir, &[]);
        process.restart();
        process
    };
    let (queue_url, payment_url) = (free_port(), free_port());
    let mut queue = start("order_queue", queue_url);
    let mut payment = start("payment", payment_url);
    let (queue_url, payment_url) = (url(queue_url), url(payment_url));
    let key = platform::card_token::FingerprintKey::new(platform::card_token::DEVELOPMENT_KEY);
    let order = {
        let key = key.clone();
        move |id: &str| testkit::probe::queued_order(&key, id, CARD, &[("4", 1)], domain::ClientCard::None)
    };
    let warm_up = order("warm-up");
    testkit::probe::eventually("the queue up", std::time::Duration::from_millis(20), || {
        testkit::probe::enqueue(&queue_url, &warm_up)
    })
    .await;
    let mut payments = testkit::probe::eventually("payment up", std::time::Duration::from_millis(20), || async {
        pb::payment_client::PaymentClient::connect(payment_url.clone()).await.ok()
    })
    .await;
    let mut enqueues =
        pb::order_queue_client::OrderQueueClient::connect(queue_url.clone()).await.expect("the queue answers");

    // Many writers at once (so their writes share transactions), each writing until
    // a write fails, and remembering a write only once it is answered: the kill
    // comes while writes are arriving.
    let answered: Arc<Mutex<(Vec<String>, Vec<String>)>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..64 {
        let (mut enqueues, mut payments, answered) = (enqueues.clone(), payments.clone(), Arc::clone(&answered));
        let order = order.clone();
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let order = order(&format!("durable-{writer}-{n}"));
                let id = order.order_id.clone();
                if enqueues.enqueue(pb::EnqueueRequest { order: Some(order.clone()) }).await.is_err() {
                    return;
                }
                answered.lock().unwrap().0.push(id.clone());
                let hold = pb::PaymentPrepareRequest { order_id: id.clone(), amount_cents: 1099, card: order.card };
                match payments.prepare(hold).await {
                    Ok(vote) => assert!(vote.get_ref().yes, "{id}: {vote:?}"),
                    Err(_) => return,
                }
                answered.lock().unwrap().1.push(id);
            }
        }));
    }
    testkit::probe::eventually("100 writes answered by each", std::time::Duration::from_millis(1), || {
        let answered = Arc::clone(&answered);
        async move {
            let answered = answered.lock().unwrap();
            (answered.0.len() >= 100 && answered.1.len() >= 100).then_some(())
        }
    })
    .await;
    queue.kill();
    payment.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let (queued, prepared) = answered.lock().unwrap().clone();

    queue.restart();
    payment.restart();
    enqueues = testkit::probe::eventually("the queue back", std::time::Duration::from_millis(20), || async {
        pb::order_queue_client::OrderQueueClient::connect(queue_url.clone()).await.ok()
    })
    .await;
    payments = testkit::probe::eventually("payment back", std::time::Duration::from_millis(20), || async {
        pb::payment_client::PaymentClient::connect(payment_url.clone()).await.ok()
    })
    .await;
    for id in &queued {
        let found = enqueues.lookup(pb::LookupRequest { order_id: id.clone() }).await.unwrap().into_inner();
        assert_eq!(found.state(), pb::QueueState::Queued, "{id} was answered as enqueued");
    }
    for id in &prepared {
        let record = payments.get(pb::PaymentDecision { order_id: id.clone() }).await.unwrap().into_inner();
        assert_eq!(record.state(), pb::PaymentState::Authorized, "{id} was answered as authorized");
    }
}
