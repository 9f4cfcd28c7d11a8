//! The books database as a three-replica Raft group over real gRPC on loopback:
//! two-phase-commit participant semantics, identical stock on every replica, and
//! the group surviving the loss of its leader.

use std::time::Duration;

use proto::v1 as pb;
use proto::v1::books_db_client::BooksDbClient;
use services::leader_client::LeaderClient;
use testkit::{self as support, url, Group};

async fn prepare(client: &LeaderClient, order_id: &str, book_id: &str, quantity: u32) -> pb::BooksVote {
    client
        .call(|channel| async move {
            let lines = vec![pb::OrderLine { book_id: book_id.into(), quantity }];
            BooksDbClient::new(channel).prepare(pb::BooksPrepareRequest { order_id: order_id.into(), lines }).await
        })
        .await
        .expect("prepare answered")
        .into_inner()
}

async fn decide(client: &LeaderClient, order_id: &str, commit: bool) -> Result<pb::BooksOutcome, tonic::Status> {
    client
        .call(|channel| async move {
            let mut client = BooksDbClient::new(channel);
            let decision = pb::BooksDecision { order_id: order_id.into() };
            if commit {
                client.commit(decision).await
            } else {
                client.abort(decision).await
            }
        })
        .await
        .map(|ack| ack.into_inner().outcome())
}

/// Stock as replica `id` itself sees it.
pub async fn local_stock(group: &Group, id: u64) -> Vec<pb::BookStock> {
    let mut client = BooksDbClient::connect(url(&group.addrs[&id])).await.expect("connect");
    client.stock(pb::StockRequest { book_ids: vec![], local: true }).await.expect("stock").into_inner().books
}

/// Waits (bounded) until every running replica shows `reference`.
pub async fn converged(group: &Group, reference: Vec<pb::BookStock>) {
    for _ in 0..300 {
        let mut all = true;
        for id in group.running().collect::<Vec<_>>() {
            all &= local_stock(group, id).await == reference;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replicas did not converge to the leader's stock");
}

/// Waits (bounded) for a leader with the catalog loaded; its stock.
pub async fn ready(client: &LeaderClient) -> Vec<pb::BookStock> {
    for _ in 0..300 {
        let stock = client
            .call(|channel| async move {
                BooksDbClient::new(channel).stock(pb::StockRequest { book_ids: vec![], local: false }).await
            })
            .await;
        if let Ok(stock) = stock {
            if !stock.get_ref().books.is_empty() {
                return stock.into_inner().books;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the group never elected a leader with the catalog loaded");
}

fn available(stock: &[pb::BookStock], book_id: &str) -> u32 {
    stock.iter().find(|b| b.book_id == book_id).map_or(0, |b| b.available)
}

#[tokio::test]
async fn prepares_commits_and_aborts_identically_on_every_replica() {
    let dirs = tempfile::tempdir().unwrap();
    let group = support::books_db(dirs.path().to_owned()).await;
    let client = LeaderClient::new(&group.urls(), Duration::from_millis(500)).unwrap();
    let initial = ready(&client).await;
    assert_eq!(available(&initial, "20"), 3, "Six of Crows starts at 3");

    assert!(prepare(&client, "o1", "20", 2).await.yes);
    let refused = prepare(&client, "o2", "20", 2).await;
    assert_eq!((refused.yes, refused.reason.as_str()), (false, "only 1 copy of Six of Crows left"));
    assert!(prepare(&client, "o1", "20", 2).await.yes, "prepare is idempotent");
    assert_eq!(decide(&client, "o1", true).await.unwrap(), pb::BooksOutcome::Committed);
    assert_eq!(decide(&client, "o1", true).await.unwrap(), pb::BooksOutcome::Committed, "commit is idempotent");
    assert_eq!(decide(&client, "o2", false).await.unwrap(), pb::BooksOutcome::Aborted);
    // A decision against the recorded one changes nothing and is answered with
    // the recorded one (an answer, not an error: the caller sees the conflict).
    assert_eq!(decide(&client, "o1", false).await.unwrap(), pb::BooksOutcome::Committed, "o1 stays committed");
    assert_eq!(decide(&client, "o2", true).await.unwrap(), pb::BooksOutcome::Aborted, "o2 stays aborted");
    assert_eq!(decide(&client, "never", true).await.unwrap(), pb::BooksOutcome::NotPrepared);

    let leader_view = ready(&client).await;
    let six = leader_view.iter().find(|b| b.book_id == "20").unwrap();
    assert_eq!((six.available, six.reserved, six.sold, six.initial), (1, 0, 2, 3));
    converged(&group, leader_view).await;
}

#[tokio::test]
async fn losing_the_leader_keeps_the_group_working_and_the_old_leader_catches_up() {
    let dirs = tempfile::tempdir().unwrap();
    let mut group = support::books_db(dirs.path().to_owned()).await;
    let client = LeaderClient::new(&group.urls(), Duration::from_millis(500)).unwrap();
    ready(&client).await;
    assert!(prepare(&client, "before", "4", 1).await.yes);
    let leader = group.id_of(client.current());
    group.stop(leader).await;

    // The next prepare finds the new leader by itself.
    assert!(prepare(&client, "after", "4", 2).await.yes);
    assert_eq!(decide(&client, "before", true).await.unwrap(), pb::BooksOutcome::Committed);
    assert_eq!(decide(&client, "after", true).await.unwrap(), pb::BooksOutcome::Committed);

    group.restart(leader).await;
    let leader_view = ready(&client).await;
    assert_eq!(available(&leader_view, "4"), 60 - 3);
    converged(&group, leader_view).await;
}
