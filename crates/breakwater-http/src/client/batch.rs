//! What the batch submitter ([`crate::batch`]) reads from a client: its bound routes,
//! its providers, its HTTP client; and where it records what batch results cost.

use std::sync::Arc;

use breakwater_core::{BatchCost, Key, Usage};

use super::{BoundRoute, Client, ProviderEntry};

impl Client {
    /// The route named `name`, bound at build.
    pub(crate) fn bound_route(&self, name: &str) -> Option<&BoundRoute> {
        self.inner.routes.get(name)
    }

    /// The provider endpoint named `name` (as route steps name it), if a route uses it.
    pub(crate) fn provider_named(&self, name: &str) -> Option<Arc<ProviderEntry>> {
        self.inner
            .routes
            .values()
            .flat_map(|bound| &bound.steps)
            .find(|target| target.provider.name == name)
            .map(|target| Arc::clone(&target.provider))
    }

    /// The HTTP client the client sends with.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Counts a result a batch delivered in the client's metrics.
    pub(crate) fn record_batch_result(&self, key: &Key, usage: Usage, cost: BatchCost) {
        self.inner
            .metrics
            .lock()
            .record_batch_result(key, usage, cost);
    }
}
