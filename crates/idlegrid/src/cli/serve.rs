//! `idlegrid serve`: the OpenAI-compatible embeddings endpoint, on this machine's GPU or through a
//! pool, until interrupted. Prints `listening on http://ADDR/v1` once it accepts connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use idlegrid::client::Client;
use idlegrid::embed::{EmbedError, embeddings_output};
use idlegrid::gpu::RunControl;
use idlegrid::identity::default_data_dir;
use idlegrid::job::JobLimits;
use idlegrid::openai::{Embedder, LocalEmbedder, PoolEmbedder, ServeConfig};
use idlegrid::worker::WorkerProcess;

use super::embed::Backend;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    backend: Backend,
    /// Address to listen on, such as 127.0.0.1:8080
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// A file whose first line is the key clients must send as `Authorization: Bearer KEY`
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Answer 504 when a request is not done within this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: u64,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let api_key = match &args.api_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let key = text.lines().next().unwrap_or_default().trim().to_owned();
            if key.is_empty() {
                bail!("{} holds no key", path.display());
            }
            Some(key)
        }
        None => None,
    };
    let config = ServeConfig {
        api_key,
        deadline: Duration::from_secs(args.request_timeout),
        ..ServeConfig::default()
    };
    let model = args.backend.load_model()?;
    let runtime = super::network::runtime()?;
    runtime.block_on(async {
        let embedder: Arc<dyn Embedder> = match &args.backend.pool {
            Some(ticket) => {
                let data = args.backend.data.clone().unwrap_or_else(default_data_dir);
                let key = super::network::identity(&data)?.secret_key().clone();
                let network = args.backend.relays.network()?;
                let client = Client::connect_with(ticket, key, &network).await?;
                Arc::new(PoolEmbedder::new(
                    model,
                    client,
                    args.backend.job_tokens,
                    args.backend.replicas,
                ))
            }
            None => {
                let limits = JobLimits::default();
                let mut worker_config = crate::worker_config(None)?;
                worker_config.limits = limits.clone();
                let mut worker = WorkerProcess::start(worker_config)?;
                Arc::new(LocalEmbedder::new(
                    model,
                    args.backend.job_tokens,
                    move |job| {
                        let output = worker
                            .run(job, limits.deadline, &RunControl::default())
                            .map_err(|e| EmbedError::Output(e.to_string()))?;
                        embeddings_output(output.outputs)
                    },
                ))
            }
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on http://{}/v1", listener.local_addr()?);
        tokio::select! {
            served = idlegrid::openai::serve(listener, embedder, config) => Ok(served?),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
