//! An OpenAI-compatible endpoint for embeddings: `POST /v1/embeddings` and `GET /v1/models`, so a
//! developer points the client library they already use at Idlegrid. `request` parses bodies, `error`
//! shapes errors as OpenAI does, `server` speaks HTTP/1.1 (hyper), `backend` does the work on this
//! machine's GPU or through a pool.

mod backend;
mod error;
pub mod request;
mod server;

pub use backend::{EmbedFailure, Embedder, LocalEmbedder, PoolEmbedder};
pub use error::ApiError;
pub use server::{MAX_BODY_BYTES, ServeConfig, serve};
