//! Reading f32 tensors out of a `.safetensors` file: an 8-byte header length, a JSON header naming each
//! tensor's dtype, shape and byte range, then the data. Every range is checked against the file before
//! it is sliced, so a damaged file is an error, never a panic.

use std::collections::HashMap;

use serde::Deserialize;

use super::EmbedError;

/// Largest header accepted; real ones are a few tens of KiB.
const MAX_HEADER_BYTES: u64 = 16 << 20;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The tensors of one file, by name, over its bytes.
pub(super) struct Tensors {
    bytes: Vec<u8>,
    data_start: usize,
    entries: HashMap<String, Entry>,
    /// A prefix some exports put before every name ("bert.", "model."), found once.
    prefix: String,
}

impl Tensors {
    pub fn parse(bytes: Vec<u8>, file: &str) -> Result<Tensors, EmbedError> {
        let bad = |message: String| EmbedError::Weights {
            file: file.to_owned(),
            message,
        };
        let header_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| bad("shorter than its header".into()))?;
        if header_len > MAX_HEADER_BYTES || 8 + header_len > bytes.len() as u64 {
            return Err(bad(format!(
                "header of {header_len} bytes does not fit the file"
            )));
        }
        let data_start = 8 + header_len as usize;
        let raw: HashMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let mut entries = HashMap::new();
        for (name, value) in raw {
            if name == "__metadata__" {
                continue;
            }
            let entry: Entry =
                serde_json::from_value(value).map_err(|e| bad(format!("tensor {name}: {e}")))?;
            entries.insert(name, entry);
        }
        let prefix = ["", "bert.", "model."]
            .into_iter()
            .find(|p| entries.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .unwrap_or_default()
            .to_owned();
        Ok(Tensors {
            bytes,
            data_start,
            entries,
            prefix,
        })
    }

    /// Rows of a two-dimensional tensor whose rows are `width` long.
    pub fn rows(&self, name: &str, width: u64) -> Option<u64> {
        match self
            .entries
            .get(&format!("{}{name}", self.prefix))?
            .shape
            .as_slice()
        {
            [rows, w] if *w == width => Some(*rows),
            _ => None,
        }
    }

    /// The f32 values of tensor `name` (without any prefix), which must have `shape`.
    pub fn f32s(&self, name: &str, shape: &[u64], file: &str) -> Result<Vec<f32>, EmbedError> {
        let bad = |message: String| EmbedError::Weights {
            file: file.to_owned(),
            message: format!("tensor {name}: {message}"),
        };
        let entry = self
            .entries
            .get(&format!("{}{name}", self.prefix))
            .ok_or_else(|| bad("missing".into()))?;
        if entry.dtype != "F32" {
            return Err(bad(format!("is {}, only F32 is supported", entry.dtype)));
        }
        if entry.shape != shape {
            return Err(bad(format!(
                "has shape {:?}, the config implies {shape:?}",
                entry.shape
            )));
        }
        let [start, end] = entry.data_offsets;
        let count: u64 = shape.iter().product();
        let range = (self.data_start as u64)
            .checked_add(start)
            .zip((self.data_start as u64).checked_add(end));
        let Some((from, to)) = range.filter(|(f, t)| f <= t && *t <= self.bytes.len() as u64)
        else {
            return Err(bad("byte range lies outside the file".into()));
        };
        if to - from != count * 4 {
            return Err(bad(format!("holds {} bytes for {count} floats", to - from)));
        }
        Ok(self.bytes[from as usize..to as usize]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// The bytes of a safetensors file holding `tensors` (name, shape, values), as exporters write it.
pub(super) fn write(tensors: &[(String, Vec<u64>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape, values) in tensors {
        let end = offset + values.len() as u64 * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let header = serde_json::Value::Object(header).to_string().into_bytes();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    for (_, _, values) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    bytes
}
