//! What the endpoint embeds with: this machine's GPU (a job runner, such as a GPU worker process), or a
//! pool through [`Client::embed`], which gives up early with a clear reason when the pool says no
//! provider is connected ([`Blocker::NoProviderConnected`]) rather than waiting for the deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::client::Client;
use crate::embed::{EmbedError, Embeddings, Model};
use crate::job::Job;
use crate::protocol::Blocker;

/// Why embedding failed, as far as the endpoint's caller cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbedFailure {
    /// Nothing can do the work now: a 503.
    Unavailable(String),
    /// The work failed: a 500 with the reason.
    Failed(String),
}

pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Embeddings, EmbedFailure>> + Send + 'a>>;

pub trait Embedder: Send + Sync + 'static {
    fn model(&self) -> &Model;
    fn embed(&self, texts: Vec<String>) -> EmbedFuture<'_>;
}

type Runner = Box<dyn FnMut(&Job) -> Result<Vec<u8>, EmbedError> + Send>;

/// Embeds on this machine, one request at a time, with `run` doing each job.
pub struct LocalEmbedder {
    model: Model,
    budget: u32,
    run: Arc<Mutex<Runner>>,
}

impl LocalEmbedder {
    pub fn new(
        model: Model,
        budget: u32,
        run: impl FnMut(&Job) -> Result<Vec<u8>, EmbedError> + Send + 'static,
    ) -> LocalEmbedder {
        LocalEmbedder {
            model,
            budget,
            run: Arc::new(Mutex::new(Box::new(run))),
        }
    }
}

impl Embedder for LocalEmbedder {
    fn model(&self) -> &Model {
        &self.model
    }

    fn embed(&self, texts: Vec<String>) -> EmbedFuture<'_> {
        let (model, run, budget) = (self.model.clone(), Arc::clone(&self.run), self.budget);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut run = crate::sync::lock(&run);
                model.embed_with(&texts, budget, |job| run(job))
            })
            .await
            .map_err(|e| EmbedFailure::Failed(e.to_string()))?
            .map_err(|e| EmbedFailure::Failed(e.to_string()))
        })
    }
}

/// Embeds through a pool as one submitter.
pub struct PoolEmbedder {
    model: Model,
    client: Client,
    budget: u32,
    replicas: u32,
}

impl PoolEmbedder {
    pub fn new(model: Model, client: Client, budget: u32, replicas: u32) -> PoolEmbedder {
        PoolEmbedder {
            model,
            client,
            budget,
            replicas,
        }
    }
}

impl Embedder for PoolEmbedder {
    fn model(&self) -> &Model {
        &self.model
    }

    fn embed(&self, texts: Vec<String>) -> EmbedFuture<'_> {
        Box::pin(async move {
            let (nobody, mut told) = tokio::sync::watch::channel(false);
            let work = self
                .client
                .embed(&self.model, &texts, self.budget, self.replicas, |p| {
                    if p.blocked == Some(Blocker::NoProviderConnected) {
                        nobody.send_replace(true);
                    }
                });
            tokio::select! {
                result = work => result.map_err(|e| match e {
                    EmbedError::Client(e) => EmbedFailure::Unavailable(format!("the pool: {e}")),
                    other => EmbedFailure::Failed(other.to_string()),
                }),
                _ = told.wait_for(|nobody| *nobody) => Err(EmbedFailure::Unavailable(
                    "no provider is connected to the pool: nothing can compute embeddings now".into(),
                )),
            }
        })
    }
}
