//! `idlegrid embed`: sentence embeddings of texts, on this machine's GPU (in a GPU worker process, as
//! `run` does) or through a pool. Thin: reads the texts and the model, calls the engine, writes JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use idlegrid::client::Client;
use idlegrid::embed::{
    DEFAULT_TOKEN_BUDGET, EmbedError, Embeddings, Model, SETUP_MODEL_DIR, default_model_dir,
    embeddings_output,
};
use idlegrid::gpu::RunControl;
use idlegrid::identity::default_data_dir;
use idlegrid::job::JobLimits;
use idlegrid::worker::WorkerProcess;
use serde_json::json;

/// Where the work runs and which model: what `embed` and `serve` share.
#[derive(Args, Clone)]
pub struct Backend {
    /// The pool's ticket, as printed by `idlegrid pool`
    #[arg(
        long,
        value_name = "TICKET",
        conflicts_with = "local",
        required_unless_present = "local"
    )]
    pub pool: Option<String>,
    /// Run on this machine's GPU instead of a pool
    #[arg(long)]
    pub local: bool,
    /// A sentence-transformers model directory (BERT family) [default: $IDLEGRID_MODEL, else
    /// .tools/models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Tokens (padding included) in one job
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TOKEN_BUDGET)]
    pub job_tokens: u32,
    /// Independent providers that must agree on each job (the pool may ask for more)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
    /// Whose identity submits to the pool (default: the platform data dir)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub relays: super::relay::RelayArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    backend: Backend,
    /// A text to embed; repeat for more
    #[arg(
        long,
        value_name = "T",
        required_unless_present = "input",
        conflicts_with = "input"
    )]
    text: Vec<String>,
    /// A file with one text per line
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the JSON lines here instead of stdout
    #[arg(long, value_name = "FILE.jsonl")]
    out: Option<PathBuf>,
    /// Print a summary instead (texts, tokens, model, milliseconds)
    #[arg(long)]
    json: bool,
}

impl Backend {
    pub fn load_model(&self) -> anyhow::Result<Model> {
        let dir = self.model.clone().unwrap_or_else(default_model_dir);
        if !dir.join("config.json").exists() {
            bail!(
                "no model in {}: give --model DIR (./scripts/setup puts all-MiniLM-L6-v2 in {SETUP_MODEL_DIR})",
                dir.display()
            );
        }
        Model::load(&dir, &JobLimits::default())
            .with_context(|| format!("cannot load the model in {}", dir.display()))
    }
}

pub fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let texts = match &args.input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => args.text.clone(),
    };
    let model = args.backend.load_model()?;
    let started = Instant::now();
    let embeddings = match &args.backend.pool {
        Some(ticket) => embed_through_pool(&args.backend, ticket, &model, &texts)?,
        None => embed_locally(&args.backend, &model, &texts)?,
    };
    let milliseconds = started.elapsed().as_secs_f64() * 1e3;
    match &args.out {
        Some(path) => {
            let mut lines = Vec::new();
            write_lines(&mut lines, &embeddings)?;
            crate::cli::network::write_atomically(path, &lines)?;
        }
        None if !args.json => write_lines(&mut std::io::stdout().lock(), &embeddings)?,
        None => {}
    }
    if args.json {
        let summary = json!({
            "texts": texts.len(),
            "tokens": embeddings.tokens,
            "model": model.name(),
            "dimensions": model.config.hidden,
            "milliseconds": milliseconds,
            "out": args.out,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Line<'a> {
    index: usize,
    embedding: &'a [f32],
}

/// One `{"index": i, "embedding": [...]}` line per text, in input order.
fn write_lines(out: &mut impl Write, embeddings: &Embeddings) -> anyhow::Result<()> {
    for (index, embedding) in embeddings.vectors.iter().enumerate() {
        serde_json::to_writer(&mut *out, &Line { index, embedding })?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Each batch's job in a GPU worker process, one after another.
pub fn embed_locally(
    backend: &Backend,
    model: &Model,
    texts: &[String],
) -> anyhow::Result<Embeddings> {
    let limits = JobLimits::default();
    let mut config = crate::worker_config(None)?;
    config.limits = limits.clone();
    let mut worker = WorkerProcess::start(config)?;
    let result = model.embed_with(texts, backend.job_tokens, |job| {
        let output = worker
            .run(job, limits.deadline, &RunControl::default())
            .map_err(|e| EmbedError::Output(e.to_string()))?;
        embeddings_output(output.outputs)
    });
    worker.stop();
    Ok(result?)
}

fn embed_through_pool(
    backend: &Backend,
    ticket: &str,
    model: &Model,
    texts: &[String],
) -> anyhow::Result<Embeddings> {
    let data = backend.data.clone().unwrap_or_else(default_data_dir);
    let key = crate::cli::network::identity(&data)?.secret_key().clone();
    let network = backend.relays.network()?;
    crate::cli::network::runtime()?.block_on(async {
        let client = Client::connect_with(ticket, key, &network).await?;
        let result = client
            .embed(model, texts, backend.job_tokens, backend.replicas, |p| {
                tracing::info!(done = p.jobs_done, jobs = p.jobs, "embedding");
            })
            .await;
        client.close().await;
        Ok(result?)
    })
}
