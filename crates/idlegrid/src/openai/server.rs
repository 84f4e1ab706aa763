//! The HTTP side: hyper's HTTP/1.1 server on a TCP listener, one task a connection. A body is capped
//! before it is read (its declared length first, then as it streams), the key is checked before
//! anything else, and a request past its deadline is answered 504.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::backend::{EmbedFailure, Embedder};
use super::error::ApiError;
use super::request::{self, Encoding};

/// Largest request body read: OpenAI's own limit on an embeddings request.
pub const MAX_BODY_BYTES: usize = 8 << 20;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Required as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
    /// Longest a request may take before it is answered 504.
    pub deadline: Duration,
    pub max_body_bytes: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            api_key: None,
            deadline: Duration::from_secs(300),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    embedder: Arc<dyn Embedder>,
    config: ServeConfig,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    loop {
        let (stream, peer) = listener.accept().await?;
        let (embedder, config) = (Arc::clone(&embedder), Arc::clone(&config));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (embedder, config) = (Arc::clone(&embedder), Arc::clone(&config));
                async move { Ok::<_, Infallible>(answer(request, &*embedder, &config).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended");
            }
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    embedder: &dyn Embedder,
    config: &ServeConfig,
) -> Response<Full<Bytes>> {
    match route(request, embedder, config).await {
        Ok(body) => reply(StatusCode::OK, &body),
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            reply(status, &error.body())
        }
    }
}

fn reply(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn route(
    request: Request<Incoming>,
    embedder: &dyn Embedder,
    config: &ServeConfig,
) -> Result<serde_json::Value, ApiError> {
    authorize(&request, config)?;
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let model = embedder.model();
    match (request.method(), path.as_str()) {
        (&Method::POST, "/v1/embeddings") => embeddings(request, embedder, config).await,
        (&Method::GET, "/v1/models") => {
            Ok(json!({"object": "list", "data": [model_object(model.name())]}))
        }
        (&Method::GET, p) if p.starts_with("/v1/models/") => {
            let id = &p["/v1/models/".len()..];
            if serves(model.name(), id) {
                Ok(model_object(model.name()))
            } else {
                Err(ApiError::model_not_found(id))
            }
        }
        (method, "/v1/embeddings" | "/v1/models") => {
            Err(ApiError::method_not_allowed(method.as_str(), &path))
        }
        _ => Err(ApiError::not_found(&path)),
    }
}

fn authorize(request: &Request<Incoming>, config: &ServeConfig) -> Result<(), ApiError> {
    let Some(key) = &config.api_key else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared in full whatever the first difference, so timing does not tell how much was right.
    let same = given.len() == key.len()
        && given
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

fn model_object(name: &str) -> serde_json::Value {
    json!({"id": name, "object": "model", "created": 0, "owned_by": "idlegrid"})
}

/// Whether a request naming `asked` is for the model served as `name` (also as
/// "sentence-transformers/NAME", as such models are known on model hubs).
fn serves(name: &str, asked: &str) -> bool {
    asked == name || asked.rsplit_once('/').is_some_and(|(_, last)| last == name)
}

async fn read_body(request: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::invalid(format!("the request body is over {} MiB", max >> 20));
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    Limited::new(request.into_body(), max)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"))
            }
        })
}

async fn embeddings(
    request: Request<Incoming>,
    embedder: &dyn Embedder,
    config: &ServeConfig,
) -> Result<serde_json::Value, ApiError> {
    let body = read_body(request, config.max_body_bytes).await?;
    let model = embedder.model();
    let parsed = request::parse(&body, model.config.hidden)?;
    if !serves(model.name(), &parsed.model) {
        return Err(ApiError::model_not_found(&parsed.model));
    }
    let embeddings = tokio::time::timeout(config.deadline, embedder.embed(parsed.input))
        .await
        .map_err(|_| ApiError::timeout(config.deadline.as_secs()))?
        .map_err(|failure| match failure {
            EmbedFailure::Unavailable(message) => ApiError::unavailable(message),
            EmbedFailure::Failed(message) => ApiError::internal(message),
        })?;
    let data: Vec<serde_json::Value> = embeddings
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = match parsed.encoding {
                Encoding::Float => json!(vector),
                Encoding::Base64 => {
                    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model.name(),
        "usage": {"prompt_tokens": embeddings.tokens, "total_tokens": embeddings.tokens},
    }))
}
