//! Errors as OpenAI's API shapes them: an HTTP status and `{"error": {"message", "type", "code"}}`, so
//! a developer's client raises the exception it raises against OpenAI.

use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400: the request is malformed or asks for what cannot be given.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
        }
    }

    pub fn invalid_with(message: impl Into<String>, code: &'static str) -> ApiError {
        ApiError {
            code: Some(code),
            ..ApiError::invalid(message)
        }
    }

    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: 404,
            message: format!("The model `{model}` does not exist or you do not have access to it."),
            kind: "invalid_request_error",
            code: Some("model_not_found"),
        }
    }

    pub fn not_found(path: &str) -> ApiError {
        ApiError {
            status: 404,
            message: format!("Unknown request URL: {path}"),
            kind: "invalid_request_error",
            code: Some("unknown_url"),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError {
            status: 401,
            message: "Incorrect API key provided: give it as `Authorization: Bearer KEY`".into(),
            kind: "invalid_request_error",
            code: Some("invalid_api_key"),
        }
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: 405,
            message: format!("{method} is not allowed on {path}"),
            kind: "invalid_request_error",
            code: None,
        }
    }

    /// 503: nothing can do the work now (no provider connected, no GPU).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 503,
            message: message.into(),
            kind: "server_error",
            code: Some("service_unavailable"),
        }
    }

    pub fn timeout(seconds: u64) -> ApiError {
        ApiError {
            status: 504,
            message: format!("the embeddings were not ready within {seconds} s"),
            kind: "server_error",
            code: Some("timeout"),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            message: message.into(),
            kind: "server_error",
            code: None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}})
    }
}
