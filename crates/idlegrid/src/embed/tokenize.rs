//! Turning texts into token ids on the submitter's side, so providers receive ids and never parse a
//! tokenizer file. The tokenizer file's own padding is turned off (batches are padded by the job) and its
//! truncation set to the model's maximum length, as sentence-transformers truncates.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::EmbedError;

/// Reads `tokenizer.json`, with padding off and truncation at `max_len` tokens (special ones included).
pub(super) fn load(path: &Path, max_len: u32) -> Result<Tokenizer, EmbedError> {
    let tokenizer = Tokenizer::from_file(path).map_err(|e| EmbedError::Config {
        file: path.to_owned(),
        message: e.to_string(),
    })?;
    configure(tokenizer, max_len).map_err(|message| EmbedError::Config {
        file: path.to_owned(),
        message,
    })
}

pub(super) fn configure(mut tokenizer: Tokenizer, max_len: u32) -> Result<Tokenizer, String> {
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_len as usize,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

/// The token ids of each text, with the model's special tokens, at most its maximum length.
pub(super) fn encode(tokenizer: &Tokenizer, texts: &[String]) -> Result<Vec<Vec<u32>>, EmbedError> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokenizer
                .encode(text.as_str(), true)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| EmbedError::Tokenize {
                    index,
                    message: e.to_string(),
                })
        })
        .collect()
}
