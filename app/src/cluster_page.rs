//! `/cluster`: how the replicated groups and the queue are doing, for whoever runs
//! the shop (and for a demonstration: stop a replica and watch the leader move).
//!
//! One table per Raft group (the order executors, the books database), one row per
//! replica, the leader highlighted and silent replicas dimmed; then the queue's
//! depth by priority. The server renders the first snapshot (the route waits for
//! it: `SsrMode::Async`); in the browser the page asks for a new one every 2 seconds
//! and says how fresh what it shows is. If the web server stops answering, the last
//! snapshot stays with its age ("updated 14 s ago").

use std::time::Duration;

use domain::{ClusterStatus, QueueDepth, ReplicaStatus, Role};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::cluster_status;
use crate::layout::SiteHeader;
use crate::poll::{poll, Cadence, Next};

/// Every 2 seconds, for at least ten minutes.
pub(crate) const CLUSTER_CADENCE: Cadence = Cadence { interval: Duration::from_secs(2), limit: 300 };

#[component]
pub(crate) fn ClusterPage() -> impl IntoView {
    // `None` when it could not be read; no error details reach the page (the value is
    // also serialized into it for hydration).
    let first = Resource::new(|| (), |()| async { cluster_status().await.ok() });
    view! {
        <Title text="Cluster status · Tartu Bookstore" />
        <SiteHeader />
        <main id="main" class="page page-cluster">
            <div class="page-heading">
                <h1>"Cluster status"</h1>
                <p class="lede">"The order executors, the books database and the order queue, as the web server sees them."</p>
            </div>
            <Suspense fallback=|| view! { <p class="cluster-loading">"Asking the replicas…"</p> }>
                {move || Suspend::new(async move {
                    let first = first.await;
                    view! { <LiveCluster first /> }
                })}
            </Suspense>
        </main>
    }
}

/// The snapshot, kept fresh in the browser.
#[component]
fn LiveCluster(first: Option<ClusterStatus>) -> impl IntoView {
    let cluster = RwSignal::new(first);
    // Seconds since the last answer: 0 for the server-rendered snapshot.
    let age = RwSignal::new(0_u64);
    // The last question got no answer.
    let failing = RwSignal::new(false);
    let gave_up = RwSignal::new(false);

    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        let answered_at = StoredValue::new(now_seconds());
        let ask = move || async move {
            match cluster_status().await {
                Ok(snapshot) => {
                    answered_at.set_value(now_seconds());
                    age.set(0);
                    failing.set(false);
                    if cluster.with_untracked(|shown| shown.as_ref() != Some(&snapshot)) {
                        cluster.set(Some(snapshot));
                    }
                }
                Err(_) => {
                    age.set(seconds_between(answered_at.get_value(), now_seconds()));
                    failing.set(true);
                }
            }
            Next::Again
        };
        poll(CLUSTER_CADENCE, ask, move || gave_up.set(true));
    });

    let stopped_note = format!(
        "Stopped refreshing after {} minutes: refresh the page to see the latest status.",
        CLUSTER_CADENCE.span_minutes()
    );
    let updated = move || {
        let mut parts = Vec::new();
        if cluster.with(Option::is_some) {
            parts.push(freshness(age.get()));
        }
        if gave_up.get() {
            parts.push(stopped_note.clone());
        } else if failing.get() {
            parts.push("The web server did not answer the last check; trying again.".to_owned());
        }
        (!parts.is_empty()).then(|| view! { <p class="cluster-updated" id="cluster-updated">{parts.join(" · ")}</p> })
    };
    view! {
        {updated}
        {move || match cluster.get() {
            Some(cluster) => {
                view! {
                    <div class="cluster-groups">
                        <ReplicaTable id="cluster-executors" title="Order executors" replicas=cluster.executors />
                        <ReplicaTable id="cluster-books-db" title="Books database" replicas=cluster.books_db />
                    </div>
                    <QueueSection queue=cluster.queue />
                }
                    .into_any()
            }
            None => {
                view! {
                    <section class="panel cluster-error" id="cluster-error">
                        <h2>"We could not read the cluster's status just now"</h2>
                        <p>"This page keeps asking; it will fill in when the web server answers."</p>
                    </section>
                }
                    .into_any()
            }
        }}
    }
}

/// One Raft group: `table#{id}` with a `tr.replica[data-id][data-role]` per replica.
#[component]
fn ReplicaTable(id: &'static str, title: &'static str, replicas: Vec<ReplicaStatus>) -> impl IntoView {
    let heading = format!("{id}-title");
    let rows = if replicas.is_empty() {
        view! {
            <tr class="replicas-empty">
                <td colspan="6">"No replica reported."</td>
            </tr>
        }
        .into_any()
    } else {
        replicas.into_iter().map(|replica| view! { <ReplicaRow replica /> }).collect_view().into_any()
    };
    view! {
        <section class="panel cluster-group">
            <h2 id=heading.clone()>{title}</h2>
            <div class="table-scroll">
                <table id=id class="replicas" aria-labelledby=heading>
                    <thead>
                        <tr>
                            <th scope="col">"Replica"</th>
                            <th scope="col">"Address"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col" class="number">"Term"</th>
                            <th scope="col" class="number">"Last applied"</th>
                            <th scope="col">"Answering"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn ReplicaRow(replica: ReplicaStatus) -> impl IntoView {
    let class = row_class(&replica);
    let last_applied = replica.last_applied.map_or_else(|| "—".to_owned(), |index| index.to_string());
    let role = replica.role.as_str();
    view! {
        <tr class=class data-id=replica.id data-role=role>
            // data-label: the column's name, shown beside each value on narrow
            // screens, where the rows stack (style/main.css).
            <th scope="row" data-label="Replica">{replica.id}</th>
            <td class="address" data-label="Address">{replica.address}</td>
            <td class="role" data-label="Role">{role}</td>
            <td class="number" data-label="Term">{replica.term}</td>
            <td class="number" data-label="Last applied">{last_applied}</td>
            <td class="answers" data-label="Answering">{if replica.answers { "yes" } else { "no" }}</td>
        </tr>
    }
}

/// `replica`, plus `leader` for the leader and `unreachable` for a silent replica.
fn row_class(replica: &ReplicaStatus) -> String {
    let mut class = String::from("replica");
    if replica.role == Role::Leader {
        class.push_str(" leader");
    }
    if !replica.answers || replica.role == Role::Unreachable {
        class.push_str(" unreachable");
    }
    class
}

/// The queue's depth by priority (`#cluster-queue`), or that it did not answer.
#[component]
fn QueueSection(queue: Option<QueueDepth>) -> impl IntoView {
    let body = match queue {
        Some(depth) => {
            let counts = [
                ("premium", "Premium", depth.premium),
                ("basic", "Basic", depth.basic),
                ("none", "None", depth.none),
                ("leased", "Leased to an executor", depth.leased),
            ]
            .into_iter()
            .map(|(key, label, count)| {
                view! {
                    <div class="queue-count" data-priority=key>
                        <dt>{label}</dt>
                        <dd>{count}</dd>
                    </div>
                }
            })
            .collect_view();
            view! { <dl class="queue-depth">{counts}</dl> }.into_any()
        }
        None => {
            view! { <p class="cluster-silent" id="cluster-queue-silent">"The queue did not answer."</p> }.into_any()
        }
    };
    view! {
        <section class="panel cluster-group" id="cluster-queue" aria-labelledby="cluster-queue-title">
            <h2 id="cluster-queue-title">"Order queue"</h2>
            <p class="section-hint">"Orders waiting, by the client card's priority."</p>
            {body}
        </section>
    }
}

/// "Updated just now", "Updated 14 s ago", "Updated 3 min ago".
fn freshness(age_seconds: u64) -> String {
    match age_seconds {
        0..=2 => "Updated just now".to_owned(),
        3..=119 => format!("Updated {age_seconds} s ago"),
        _ => format!("Updated {} min ago", age_seconds / 60),
    }
}

/// Whole seconds from `earlier` to `later` (0 if the clock went back).
fn seconds_between(earlier: f64, later: f64) -> u64 {
    let seconds = (later - earlier).max(0.0);
    // Truncation is the intent; ages are small.
    seconds as u64
}

/// Seconds since the epoch, by the browser's clock (polling runs only there).
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Seconds since the epoch, by the server's clock (native builds compile the loop
/// but never run it).
#[cfg(not(any(feature = "hydrate", feature = "csr")))]
fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(role: Role, answers: bool) -> ReplicaStatus {
        ReplicaStatus { id: 1, address: "127.0.0.1:50071".into(), role, term: 3, last_applied: Some(7), answers }
    }

    #[test]
    fn the_leader_is_marked_and_silent_replicas_dimmed() {
        assert_eq!(row_class(&replica(Role::Leader, true)), "replica leader");
        assert_eq!(row_class(&replica(Role::Follower, true)), "replica");
        assert_eq!(row_class(&replica(Role::Unreachable, false)), "replica unreachable");
        assert_eq!(row_class(&replica(Role::Follower, false)), "replica unreachable");
        assert_eq!(row_class(&replica(Role::Unreachable, true)), "replica unreachable");
    }

    #[test]
    fn freshness_reads_naturally() {
        assert_eq!(freshness(0), "Updated just now");
        assert_eq!(freshness(2), "Updated just now");
        assert_eq!(freshness(14), "Updated 14 s ago");
        assert_eq!(freshness(119), "Updated 119 s ago");
        assert_eq!(freshness(180), "Updated 3 min ago");
    }

    #[test]
    fn ages_are_whole_seconds_and_never_negative() {
        assert_eq!(seconds_between(100.0, 114.9), 14);
        assert_eq!(seconds_between(100.0, 99.0), 0);
    }

    #[test]
    fn the_cluster_is_refreshed_every_two_seconds_for_ten_minutes() {
        assert_eq!(CLUSTER_CADENCE.interval, Duration::from_secs(2));
        assert_eq!(CLUSTER_CADENCE.span_minutes(), 10);
    }
}
