//! The manager: shutdown waits for a step in flight, state is reported, leases are honoured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use berth_workers::{
    CancellationToken, Counts, First, Job, Lease, LocalLease, Manager, Periodic, RunState, Schedule, Scope, StatusFile,
};

/// A job whose run takes `takes` and counts itself.
struct Slow {
    name: &'static str,
    takes: Duration,
    started: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    fail: bool,
}

impl Slow {
    fn new(name: &'static str, takes: Duration) -> Self {
        Slow { name, takes, started: Arc::default(), finished: Arc::default(), fail: false }
    }
}

#[async_trait]
impl Job for Slow {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        self.started.fetch_add(1, Ordering::SeqCst);
        // Not watching `stop`: the runner must not drop this midway.
        tokio::time::sleep(self.takes).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            anyhow::bail!("disk on fire");
        }
        Ok(vec![("things", 3)])
    }
}

async fn until(what: impl Fn() -> bool) {
    for _ in 0..500 {
        if what() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

#[tokio::test]
async fn shutdown_waits_for_the_step_in_flight_and_state_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workers.json");
    let mut m = Manager::start(Arc::new(LocalLease), Some(file.clone()));
    // Longer than the status file's rewrite period, so the file shows it running.
    let job = Slow::new("slow", Duration::from_millis(1500));
    let (started, finished) = (Arc::clone(&job.started), Arc::clone(&job.finished));
    m.spawn(Periodic::new(job, Schedule::every(Duration::from_secs(3600), First::AtStart)));
    // A worker waiting for its first run an hour away must not hold shutdown up.
    m.spawn(Periodic::new(
        Slow::new("later", Duration::ZERO),
        Schedule::every(Duration::from_secs(3600), First::AfterInterval),
    ));

    until(|| started.load(Ordering::SeqCst) == 1).await;
    let running = m.reports();
    assert_eq!(running[0].name, "slow");
    assert_eq!(running[0].state, RunState::Running);
    assert_eq!((running[0].runs, running[0].errors), (0, 0));
    assert_eq!(running[1].state, RunState::Idle);
    until(|| StatusFile::read(&file).is_ok_and(|s| s.running && s.workers[0].state == RunState::Running)).await;

    let begun = tokio::time::Instant::now();
    let reports = tokio::time::timeout(Duration::from_secs(5), m.stop()).await.expect("stop returns");
    assert_eq!(finished.load(Ordering::SeqCst), 1, "the step in flight ran to its end");
    assert!(begun.elapsed() < Duration::from_secs(2), "the idle worker stopped at once");
    let slow = &reports[0];
    assert_eq!(slow.state, RunState::Stopped);
    assert_eq!((slow.runs, slow.errors), (1, 0));
    assert_eq!(slow.last_outcome.as_deref(), Some("ok: things=3"));
    assert!(slow.last_run_at_ms.is_some() && slow.last_duration_ms.unwrap() >= 1500);
    assert_eq!((reports[1].state, reports[1].runs), (RunState::Stopped, 0));

    let written = StatusFile::read(&file).unwrap();
    assert!(!written.running);
    assert_eq!(written.workers, reports);
}

#[tokio::test]
async fn a_failed_step_is_counted_and_the_worker_goes_on() {
    let mut m = Manager::start(Arc::new(LocalLease), None);
    let mut job = Slow::new("flaky", Duration::ZERO);
    job.fail = true;
    let finished = Arc::clone(&job.finished);
    m.spawn(Periodic::new(job, Schedule::every(Duration::from_millis(20), First::AtStart)));
    until(|| finished.load(Ordering::SeqCst) >= 3).await;
    let reports = m.stop().await;
    let r = &reports[0];
    assert!(r.runs >= 3 && r.errors == r.runs, "{r:?}");
    assert_eq!(r.last_outcome.as_deref(), Some("failed: disk on fire"));
}

#[tokio::test]
async fn work_on_exit_runs_one_last_step() {
    let mut m = Manager::start(Arc::new(LocalLease), None);
    let job = Slow::new("flush", Duration::ZERO);
    let finished = Arc::clone(&job.finished);
    m.spawn(Periodic::new(job, Schedule::every(Duration::from_secs(3600), First::AfterInterval).on_exit()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    let reports = m.stop().await;
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    assert_eq!(reports[0].runs, 1);
}

/// A lease another node holds.
struct Held(AtomicBool);

#[async_trait]
impl Lease for Held {
    async fn acquire(&self, _worker: &str) -> anyhow::Result<bool> {
        self.0.store(true, Ordering::SeqCst);
        Ok(false)
    }

    async fn release(&self, _worker: &str) {}
}

#[tokio::test]
async fn cluster_workers_need_the_lease_and_node_workers_do_not() {
    struct NodeLocal(Slow);
    #[async_trait]
    impl Job for NodeLocal {
        fn name(&self) -> &'static str {
            "node"
        }
        fn scope(&self) -> Scope {
            Scope::Node
        }
        async fn run(&self, stop: &CancellationToken) -> anyhow::Result<Counts> {
            self.0.run(stop).await
        }
    }
    let lease = Arc::new(Held(AtomicBool::new(false)));
    let mut m = Manager::start(lease.clone(), None);
    let cluster = Slow::new("cluster", Duration::ZERO);
    let cluster_runs = Arc::clone(&cluster.finished);
    let node = Slow::new("node", Duration::ZERO);
    let node_runs = Arc::clone(&node.finished);
    m.spawn(Periodic::new(cluster, Schedule::every(Duration::from_secs(3600), First::AtStart)));
    m.spawn(Periodic::new(NodeLocal(node), Schedule::every(Duration::from_secs(3600), First::AtStart)));
    until(|| node_runs.load(Ordering::SeqCst) == 1 && lease.0.load(Ordering::SeqCst)).await;
    until(|| m.reports()[0].state == RunState::WaitingForLease).await;
    let reports = m.stop().await;
    assert_eq!(cluster_runs.load(Ordering::SeqCst), 0);
    assert_eq!((reports[0].runs, reports[1].runs), (0, 1));
}
