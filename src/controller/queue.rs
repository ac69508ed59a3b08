//! The namespace work queue: changes queue their namespace (debounced), one worker reconciles
//! due namespaces while this replica leads, failures come back after a backoff.
//!
//! Time is `tokio::time`, so the whole policy runs under `tokio::time::pause` in tests.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{Mutex, Notify, OnceCell, watch};
use tokio::time::Instant;
use tracing::error;

/// A reconcile longer than this still batches bursts for only this long.
const MAX_COST: Duration = Duration::from_secs(5);
/// Transient errors retry within this.
const TRANSIENT_CAP: Duration = Duration::from_secs(4);
/// Refusals (a change must fix them) back off to this.
const REFUSAL_CAP: Duration = Duration::from_secs(300);
/// An idle worker looks at the queue at least this often.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// The delay before the `failures`-th retry (1-based): 0.5 s, 1 s, 2 s, … capped at 4 s for
/// transient errors and at 5 min for refusals.
pub fn retry_delay(failures: u32, transient: bool) -> Duration {
    let cap = if transient {
        TRANSIENT_CAP
    } else {
        REFUSAL_CAP
    };
    Duration::from_millis(250u64.saturating_mul(1 << failures.min(10))).min(cap)
}

/// A reconcile failure, as the queue sees it.
pub trait Failure: std::fmt::Display {
    /// Worth retrying soon (the API server was unreachable, overloaded or raced us).
    fn is_transient(&self) -> bool;
}

/// Namespaces waiting for a reconcile, with when they are due.
#[derive(Debug, Default)]
pub struct Queue {
    due: BTreeMap<String, Instant>,
    failures: BTreeMap<String, u32>,
    /// How long the last reconcile of each namespace took: a burst of changes waits at least
    /// that long, so big namespaces batch more and re-render less.
    cost: BTreeMap<String, Duration>,
}

impl Queue {
    /// A change in `ns`: due after the debounce (or the namespace's last reconcile time, if
    /// longer). New information ends an error backoff early (a fix, or the API server being
    /// back: its relist arrives as events); a pending, earlier due time is kept.
    pub fn changed(&mut self, ns: String, debounce: Duration, now: Instant) {
        let wait = debounce.max(self.cost.get(&ns).copied().unwrap_or_default());
        let due = now + wait;
        let slot = self.due.entry(ns).or_insert(due);
        *slot = (*slot).min(due);
    }

    /// Queue these namespaces now unless they are queued already (leadership, resync).
    pub fn all_now(&mut self, namespaces: impl IntoIterator<Item = String>, now: Instant) {
        for ns in namespaces {
            self.due.entry(ns).or_insert(now);
        }
    }

    /// The namespace due first, if it is due; else how long until the next one.
    pub fn take_due(&mut self, now: Instant) -> Result<String, Option<Duration>> {
        let next = self
            .due
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(ns, t)| (ns.clone(), *t));
        match next {
            Some((ns, t)) if t <= now => {
                self.due.remove(&ns);
                Ok(ns)
            }
            Some((_, t)) => Err(Some(t - now)),
            None => Err(None),
        }
    }

    /// Record a reconcile of `ns` that took `took`; on failure, queue the retry and return
    /// its delay.
    pub fn finished(
        &mut self,
        ns: &str,
        took: Duration,
        failure: Option<bool>,
        now: Instant,
    ) -> Option<Duration> {
        self.cost.insert(ns.to_string(), took.min(MAX_COST));
        match failure {
            None => {
                self.failures.remove(ns);
                None
            }
            Some(transient) => {
                let n = self.failures.entry(ns.to_string()).or_insert(0);
                *n += 1;
                let delay = retry_delay(*n, transient);
                self.due.insert(ns.to_string(), now + delay);
                Some(delay)
            }
        }
    }

    /// When `ns` is due, if queued.
    pub fn due(&self, ns: &str) -> Option<Instant> {
        self.due.get(ns).copied()
    }
}

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Wait this long after a change before reconciling its namespace (batches bursts).
    pub debounce: Duration,
    /// Reconcile every namespace this often even without changes.
    pub resync: Duration,
}

/// The signals the worker follows.
pub struct Signals {
    /// Set once every cache has synced.
    pub ready: Arc<OnceCell<()>>,
    /// True while this replica leads.
    pub leader: watch::Receiver<bool>,
    /// Turns true at shutdown.
    pub stop: watch::Receiver<bool>,
}

/// Feed `events` (namespaces that changed) into the queue and reconcile due namespaces with
/// `reconcile` while leading, until `stop`. `known` lists every namespace (for a new leader
/// and the periodic resync); `lost_lead` runs when leadership ends. Returns when stopped,
/// after the reconcile in progress.
pub async fn run<E, F, Fut>(
    events: impl Stream<Item = Vec<String>> + Send + 'static,
    timing: Timing,
    signals: Signals,
    known: impl Fn() -> BTreeSet<String>,
    lost_lead: impl Fn(),
    reconcile: F,
) where
    E: Failure,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let queue = Arc::new(Mutex::new(Queue::default()));
    let wake = Arc::new(Notify::new());
    let feeder = {
        let (queue, wake, debounce) = (queue.clone(), wake.clone(), timing.debounce);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(namespaces) = events.next().await {
                let mut q = queue.lock().await;
                for ns in namespaces {
                    q.changed(ns, debounce, Instant::now());
                }
                drop(q);
                wake.notify_one();
            }
        })
    };
    let Signals {
        ready,
        mut leader,
        mut stop,
    } = signals;
    let mut last_resync = Instant::now();
    let mut was_leader = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let is_leader = *leader.borrow();
        let leading = is_leader && ready.get().is_some();
        if leading && (!was_leader || last_resync.elapsed() >= timing.resync) {
            // New leader or periodic resync: queue every namespace we know.
            queue.lock().await.all_now(known(), Instant::now());
            last_resync = Instant::now();
        }
        if !is_leader && was_leader {
            lost_lead();
        }
        was_leader = leading;
        let next = if leading {
            queue.lock().await.take_due(Instant::now())
        } else {
            Err(None)
        };
        match next {
            Ok(ns) => {
                let started = Instant::now();
                let result = reconcile(ns.clone()).await;
                let failure = result.as_ref().err().map(Failure::is_transient);
                let retry =
                    queue
                        .lock()
                        .await
                        .finished(&ns, started.elapsed(), failure, Instant::now());
                if let (Err(e), Some(delay)) = (result, retry) {
                    error!(namespace = %ns, error = %e, retry_in = ?delay, "reconcile failed");
                }
            }
            Err(wait) => {
                let sleep = wait.unwrap_or(IDLE_TICK).min(IDLE_TICK);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = leader.changed() => {}
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(sleep) => {}
                }
            }
        }
    }
    feeder.abort();
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[test]
    fn retries_double_from_half_a_second_up_to_their_cap() {
        let ms = |n, t| retry_delay(n, t).as_millis();
        assert_eq!(
            (1..=6).map(|n| ms(n, true)).collect::<Vec<_>>(),
            [500, 1000, 2000, 4000, 4000, 4000]
        );
        assert_eq!(
            [1, 5, 10, 11, 40].map(|n| ms(n, false)),
            [500, 8000, 256_000, 256_000, 256_000]
        );
        assert_eq!(retry_delay(u32::MAX, false), Duration::from_millis(256_000));
    }

    #[test]
    fn a_change_keeps_an_earlier_due_time_and_ends_a_backoff_early() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.changed("a".into(), Duration::from_millis(100), t0);
        q.changed(
            "a".into(),
            Duration::from_millis(100),
            t0 + Duration::from_millis(50),
        );
        assert_eq!(q.due("a"), Some(t0 + Duration::from_millis(100)));
        assert_eq!(q.take_due(t0), Err(Some(Duration::from_millis(100))));
        let at = t0 + Duration::from_millis(100);
        assert_eq!(q.take_due(at), Ok("a".to_string()));
        // Three refusals: due 2 s later; a change brings it back to the debounce.
        for _ in 0..3 {
            q.finished("a", Duration::from_millis(10), Some(false), at);
        }
        assert_eq!(q.due("a"), Some(at + Duration::from_secs(2)));
        q.changed("a".into(), Duration::from_millis(100), at);
        assert_eq!(q.due("a"), Some(at + Duration::from_millis(100)));
        // A success resets the count: the next failure waits 0.5 s again.
        assert_eq!(q.take_due(at + Duration::from_secs(1)), Ok("a".to_string()));
        q.finished("a", Duration::from_millis(10), None, at);
        assert_eq!(
            q.finished("a", Duration::from_millis(10), Some(true), at),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn a_slow_namespace_batches_longer_up_to_five_seconds() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.finished("big", Duration::from_secs(2), None, t0);
        q.finished("huge", Duration::from_secs(60), None, t0);
        q.changed("big".into(), Duration::from_millis(100), t0);
        q.changed("huge".into(), Duration::from_millis(100), t0);
        q.changed("small".into(), Duration::from_millis(100), t0);
        assert_eq!(q.due("big"), Some(t0 + Duration::from_secs(2)));
        assert_eq!(q.due("huge"), Some(t0 + Duration::from_secs(5)));
        assert_eq!(q.due("small"), Some(t0 + Duration::from_millis(100)));
    }

    #[derive(Debug)]
    struct Fail(bool);
    impl std::fmt::Display for Fail {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transient={}", self.0)
        }
    }
    impl Failure for Fail {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    /// Runs the worker under paused time; `outcome(ns, attempt)` decides each reconcile.
    struct Harness {
        events: tokio::sync::mpsc::UnboundedSender<Vec<String>>,
        leader: watch::Sender<bool>,
        stop: watch::Sender<bool>,
        ready: Arc<OnceCell<()>>,
        log: Arc<StdMutex<Vec<(String, Duration)>>>,
        lost: Arc<StdMutex<u32>>,
        task: tokio::task::JoinHandle<()>,
    }

    fn harness(
        known: &[&str],
        outcome: impl Fn(&str, usize) -> Result<(), Fail> + Send + Sync + 'static,
    ) -> Harness {
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let (leader, leader_rx) = watch::channel(true);
        let (stop, stop_rx) = watch::channel(false);
        let ready = Arc::new(OnceCell::new());
        let log: Arc<StdMutex<Vec<(String, Duration)>>> = Arc::default();
        let lost: Arc<StdMutex<u32>> = Arc::default();
        let known: BTreeSet<String> = known.iter().map(|s| s.to_string()).collect();
        let t0 = Instant::now();
        let signals = Signals {
            ready: ready.clone(),
            leader: leader_rx,
            stop: stop_rx,
        };
        let (log2, lost2) = (log.clone(), lost.clone());
        let task = tokio::spawn(async move {
            let outcome = Arc::new(outcome);
            run(
                tokio_stream(rx),
                Timing {
                    debounce: Duration::from_millis(100),
                    resync: Duration::from_secs(600),
                },
                signals,
                move || known.clone(),
                move || *lost2.lock().unwrap_or_else(|e| e.into_inner()) += 1,
                move |ns: String| {
                    let (log, outcome) = (log2.clone(), outcome.clone());
                    async move {
                        let attempt = {
                            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                            l.push((ns.clone(), t0.elapsed()));
                            l.iter().filter(|(n, _)| *n == ns).count()
                        };
                        outcome(&ns, attempt)
                    }
                },
            )
            .await;
        });
        Harness {
            events,
            leader,
            stop,
            ready,
            log,
            lost,
            task,
        }
    }

    fn tokio_stream<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    ) -> impl Stream<Item = T> + Send {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    impl Harness {
        fn log(&self) -> Vec<(String, u128)> {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(n, d)| (n.clone(), d.as_millis()))
                .collect()
        }
    }

    /// Let the worker run until virtual time `ms` (after start).
    async fn until(start: Instant, ms: u64) {
        tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_runs_before_the_caches_sync_then_every_known_namespace_runs_once() {
        let start = Instant::now();
        let h = harness(&["a", "b"], |_, _| Ok(()));
        until(start, 3000).await;
        assert_eq!(h.log(), []);
        let _ = h.ready.set(());
        let _ = h.events.send(vec![]);
        until(start, 6000).await;
        let names: Vec<String> = h.log().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
        let _ = h.stop.send(true);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), h.task)
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_one_reconcile_after_the_debounce() {
        let start = Instant::now();
        let h = harness(&[], |_, _| Ok(()));
        let _ = h.ready.set(());
        until(start, 1000).await;
        for i in 0..10 {
            let _ = h.events.send(vec!["ns".into()]);
            until(start, 1000 + i * 5).await;
        }
        until(start, 4000).await;
        assert_eq!(h.log(), [("ns".to_string(), 1100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_retry_fast_refusals_back_off_and_a_change_ends_the_wait() {
        let start = Instant::now();
        let h = harness(&[], |ns, attempt| match (ns, attempt) {
            ("flaky", 1..=3) => Err(Fail(true)),
            ("refused", 1..=3) => Err(Fail(false)),
            _ => Ok(()),
        });
        let _ = h.ready.set(());
        let _ = h.events.send(vec!["flaky".into()]);
        until(start, 20_000).await;
        // 100 ms debounce, then 0.5 s, 1 s, 2 s after each failure, then success: no more runs.
        assert_eq!(
            h.log(),
            [
                ("flaky".to_string(), 100),
                ("flaky".to_string(), 600),
                ("flaky".to_string(), 1600),
                ("flaky".to_string(), 3600),
            ]
        );
        // A refusal waits; a change (someone fixed it) ends the wait early.
        let t = 20_000;
        let _ = h.events.send(vec!["refused".into()]);
        let refused = |h: &Harness| -> Vec<u128> {
            h.log()
                .into_iter()
                .filter(|(n, _)| n == "refused")
                .map(|(_, at)| at - t as u128)
                .collect()
        };
        // 100 ms debounce, then 0.5 s, 1 s; the next retry would come 2 s after 1600, but a
        // change at 1700 brings it to 1800 (and it succeeds).
        until(start, t + 1700).await;
        assert_eq!(refused(&h), [100, 600, 1600]);
        let _ = h.events.send(vec!["refused".into()]);
        until(start, t + 10_000).await;
        assert_eq!(refused(&h), [100, 600, 1600, 1800]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_reconciles_nothing_and_a_new_leader_runs_everything() {
        let start = Instant::now();
        let h = harness(&["a"], |_, _| Ok(()));
        let _ = h.leader.send(false);
        let _ = h.ready.set(());
        let _ = h.events.send(vec!["a".into()]);
        until(start, 5000).await;
        assert_eq!(h.log(), []);
        let _ = h.leader.send(true);
        until(start, 6000).await;
        assert_eq!(h.log(), [("a".to_string(), 5000)]);
        let _ = h.leader.send(false);
        until(start, 7000).await;
        assert_eq!(*h.lost.lock().unwrap_or_else(|e| e.into_inner()), 1);
    }
}
