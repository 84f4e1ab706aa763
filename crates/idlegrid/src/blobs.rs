//! Content-addressed blobs on disk: job inputs and outputs, one file per BLAKE3 hash.
//!
//! A pool keeps every blob its jobs name; a provider keeps a bounded cache, dropping the least
//! recently used files first, so inputs shared by many jobs are fetched once. Files are written to a
//! temporary name, synced and renamed, so a process killed mid-write leaves no half blob behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bytes sent as blob {expected} hash to {actual}")]
    HashMismatch { expected: String, actual: String },
}

pub struct BlobStore {
    dir: PathBuf,
    /// Bytes kept at most; `None` keeps everything.
    capacity: Option<u64>,
}

impl BlobStore {
    pub fn open(dir: &Path, capacity: Option<u64>) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(dir).map_err(|source| BlobError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(BlobStore {
            dir: dir.to_owned(),
            capacity,
        })
    }

    fn path(&self, hash: &blake3::Hash) -> PathBuf {
        self.dir.join(hash.to_hex().as_str())
    }

    pub fn has(&self, hash: &blake3::Hash) -> bool {
        self.path(hash).is_file()
    }

    /// The blob's bytes, if kept. A file whose bytes no longer match its name (disk damage) is
    /// removed and reported missing, so it is fetched again.
    pub fn get(&self, hash: &blake3::Hash) -> Option<Vec<u8>> {
        let path = self.path(hash);
        let bytes = fs::read(&path).ok()?;
        if blake3::hash(&bytes) != *hash {
            tracing::warn!(path = %path.display(), "blob damaged on disk; dropping it");
            let _ = fs::remove_file(&path);
            return None;
        }
        if self.capacity.is_some() {
            // Marks it recently used for eviction.
            let _ = fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()));
        }
        Some(bytes)
    }

    /// Stores `bytes` under `hash` after checking they match it.
    pub fn put(&self, hash: &blake3::Hash, bytes: &[u8]) -> Result<(), BlobError> {
        let actual = blake3::hash(bytes);
        if actual != *hash {
            return Err(BlobError::HashMismatch {
                expected: hash.to_hex().to_string(),
                actual: actual.to_hex().to_string(),
            });
        }
        if self.has(hash) {
            return Ok(());
        }
        if let Some(capacity) = self.capacity {
            self.evict(capacity.saturating_sub(bytes.len() as u64));
        }
        let path = self.path(hash);
        // Two writers of the same blob (two submitters sending one input) each need their own
        // temporary file; the second rename simply replaces identical bytes.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = self.dir.join(format!(
            ".{}.{}.{n}.partial",
            hash.to_hex(),
            std::process::id()
        ));
        let io = |source| BlobError::Io {
            path: path.clone(),
            source,
        };
        let mut file = fs::File::create(&temp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, &path).map_err(io)
    }

    /// Removes the least recently used blobs until at most `keep` bytes remain.
    fn evict(&self, keep: u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.modified().ok()?;
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= keep {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_checks_and_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), Some(2500)).unwrap();
        let blobs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000]).collect();
        let hashes: Vec<_> = blobs.iter().map(|b| blake3::hash(b)).collect();
        store.put(&hashes[0], &blobs[0]).unwrap();
        store.put(&hashes[1], &blobs[1]).unwrap();
        // Use the first again, so the second is the least recently used.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(store.get(&hashes[0]).as_deref(), Some(&blobs[0][..]));
        store.put(&hashes[2], &blobs[2]).unwrap();
        assert!(store.has(&hashes[0]) && store.has(&hashes[2]));
        assert!(!store.has(&hashes[1]));

        let wrong = store.put(&hashes[1], &blobs[0]).unwrap_err();
        assert!(matches!(wrong, BlobError::HashMismatch { .. }));
        assert!(!store.has(&hashes[1]));
    }
}
