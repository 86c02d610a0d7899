//! The hook that lets one node of a cluster run a [`Scope::Cluster`](crate::Scope) worker.

use async_trait::async_trait;

/// The right to run a worker's step, shared by the nodes of a cluster.
///
/// The runner takes it before each step of a cluster-scoped worker and gives it back after.
/// An implementation over shared storage (a row with an owner and an expiry, claimed with
/// `SKIP LOCKED` or a conditional update) keeps it alive while the step runs.
#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes the lease on `worker` for this node: `false` while another node holds it.
    ///
    /// # Errors
    /// When the shared store cannot be asked; the step is then skipped like a refusal.
    async fn acquire(&self, worker: &str) -> anyhow::Result<bool>;

    /// Gives the lease on `worker` back.
    async fn release(&self, worker: &str);
}

/// A single node: every lease is granted.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalLease;

#[async_trait]
impl Lease for LocalLease {
    async fn acquire(&self, _worker: &str) -> anyhow::Result<bool> {
        Ok(true)
    }

    async fn release(&self, _worker: &str) {}
}
