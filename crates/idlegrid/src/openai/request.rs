//! Parsing a `POST /v1/embeddings` body: `input` (a string or an array of strings), `model`,
//! `encoding_format` (`float` or `base64`) and `dimensions` (only the model's own); `user` and unknown
//! fields are ignored, as OpenAI ignores them. A pure function over bytes, so every malformed body is a
//! 400 with a message, never a panic.

use serde_json::Value;

use super::error::ApiError;

/// Texts one request may carry, as OpenAI allows.
pub const MAX_INPUTS: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Float,
    /// Little-endian f32 bytes, base64: what OpenAI's own clients ask for by default.
    Base64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    pub input: Vec<String>,
    pub model: String,
    pub encoding: Encoding,
}

/// Parses a request body for a model of `dimensions` floats a vector.
pub fn parse(body: &[u8], dimensions: u32) -> Result<EmbeddingsRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::invalid("the body must be a JSON object"));
    };
    let model = match fields.get("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        Some(_) => return Err(ApiError::invalid("`model` must be a non-empty string")),
        None => return Err(ApiError::invalid("you must provide a model parameter")),
    };
    let input = match fields.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Number(_) | Value::Array(_) => Err(ApiError::invalid(
                    "`input` as token ids is not supported here: send the texts",
                )),
                _ => Err(ApiError::invalid(
                    "`input` must be a string or an array of strings",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "`input` must be a string or an array of strings",
            ));
        }
        None => return Err(ApiError::invalid("you must provide an input parameter")),
    };
    if input.is_empty() {
        return Err(ApiError::invalid("`input` cannot be an empty array"));
    }
    if input.len() > MAX_INPUTS {
        return Err(ApiError::invalid(format!(
            "`input` has {} items; at most {MAX_INPUTS} are allowed",
            input.len()
        )));
    }
    if let Some(i) = input.iter().position(String::is_empty) {
        return Err(ApiError::invalid(format!(
            "`input[{i}]` cannot be an empty string"
        )));
    }
    let encoding = match fields.get("encoding_format") {
        None | Some(Value::Null) => Encoding::Float,
        Some(Value::String(s)) if s == "float" => Encoding::Float,
        Some(Value::String(s)) if s == "base64" => Encoding::Base64,
        Some(_) => {
            return Err(ApiError::invalid(
                "`encoding_format` must be \"float\" or \"base64\"",
            ));
        }
    };
    match fields.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(dimensions)) => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "`dimensions` must be {dimensions}, this model's size; it cannot be changed"
            )));
        }
    }
    Ok(EmbeddingsRequest {
        input,
        model,
        encoding,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn parse_json(value: Value) -> Result<EmbeddingsRequest, ApiError> {
        parse(value.to_string().as_bytes(), 384)
    }

    #[test]
    fn a_string_or_an_array_with_the_options_openai_sends() {
        let one = parse_json(json!({"input": "hi", "model": "m"})).unwrap();
        assert_eq!(one.input, ["hi"]);
        assert_eq!(one.encoding, Encoding::Float);
        let many = parse_json(
            json!({"input": ["a", "b"], "model": "m", "encoding_format": "base64",
                                     "dimensions": 384, "user": "u-1", "something_new": {"x": 1}}),
        )
        .unwrap();
        assert_eq!(many.input, ["a", "b"]);
        assert_eq!(many.encoding, Encoding::Base64);
    }

    #[test]
    fn each_kind_of_bad_input_is_a_400_naming_it() {
        let cases = [
            (json!([1, 2]), "JSON object"),
            (json!({"model": "m"}), "input parameter"),
            (json!({"input": "x"}), "model parameter"),
            (json!({"input": [], "model": "m"}), "empty array"),
            (
                json!({"input": ["a", ""], "model": "m"}),
                "`input[1]` cannot be an empty string",
            ),
            (json!({"input": 5, "model": "m"}), "string or an array"),
            (json!({"input": [[1, 2]], "model": "m"}), "token ids"),
            (json!({"input": [null], "model": "m"}), "string or an array"),
            (json!({"input": "a", "model": 7}), "`model`"),
            (
                json!({"input": "a", "model": "m", "encoding_format": "int8"}),
                "encoding_format",
            ),
            (
                json!({"input": "a", "model": "m", "dimensions": 128}),
                "`dimensions` must be 384",
            ),
            (
                json!({"input": vec!["a"; MAX_INPUTS + 1], "model": "m"}),
                "at most 2048",
            ),
        ];
        for (body, expected) in cases {
            let error = parse_json(body.clone()).unwrap_err();
            assert_eq!(error.status, 400, "{body}");
            assert!(
                error.message.contains(expected),
                "{body}: {}",
                error.message
            );
        }
        assert!(
            parse(b"{\"input\": \"a\", ", 384)
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("input".to_owned()),
                        Just("model".to_owned()),
                        Just("encoding_format".to_owned()),
                        Just("dimensions".to_owned()),
                        ".{0,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any bytes at all: a request or a 400, never a panic.
        #[test]
        fn arbitrary_bytes_are_a_request_or_a_400(body in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = parse(&body, 384) {
                prop_assert_eq!(error.status, 400);
            }
        }

        /// Any JSON shaped near a request: a request only when it is one, else a 400 with a message.
        #[test]
        fn arbitrary_json_is_judged_by_its_shape(value in json_value()) {
            match parse_json(value.clone()) {
                Ok(request) => {
                    prop_assert!(!request.input.is_empty() && request.input.iter().all(|t| !t.is_empty()));
                    prop_assert_eq!(value["model"].as_str(), Some(request.model.as_str()));
                }
                Err(error) => {
                    prop_assert_eq!(error.status, 400);
                    prop_assert!(!error.message.is_empty());
                }
            }
        }

        /// Every well-formed request is taken, whatever extra fields come with it.
        #[test]
        fn well_formed_requests_are_taken(
            texts in prop::collection::vec(".{1,20}", 1..8),
            extra in ".{0,8}",
            base64 in any::<bool>(),
        ) {
            let format = if base64 { "base64" } else { "float" };
            let mut body = json!({"input": texts, "model": "m", "encoding_format": format, "user": "u"});
            if !["input", "model", "encoding_format", "dimensions", "user"].contains(&extra.as_str()) {
                body[extra.as_str()] = json!({"ignored": true});
            }
            let request = parse_json(body).unwrap();
            prop_assert_eq!(request.input, texts);
            prop_assert_eq!(request.encoding == Encoding::Base64, base64);
        }
    }
}
