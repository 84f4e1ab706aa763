//! Model weights the pool has read to answer embedding canaries, kept by their blob hash: a model's
//! weights (90 MB for MiniLM) are read from the blob store and decoded once, not for every canary.
//! Only the few models used last are kept, since each costs its size in memory.

use std::sync::{Arc, Mutex, MutexGuard};

/// Models kept at most; a pool rarely serves more than one or two at a time.
const MODELS_KEPT: usize = 2;

/// Decoded weights (f32) by blob hash, the most recently used last.
#[derive(Default)]
pub(super) struct WeightsCache {
    kept: Mutex<Vec<(blake3::Hash, Arc<[f32]>)>>,
}

impl WeightsCache {
    /// The weights named `hash`, read with `read` (the blob's bytes, `None` when the pool lacks it)
    /// only when not kept already. Two canaries wanting the same weights at once read them once: the
    /// second waits for the first.
    pub(super) fn get_or_read(
        &self,
        hash: &blake3::Hash,
        read: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Arc<[f32]>> {
        let mut kept = self.lock();
        if let Some(at) = kept.iter().position(|(h, _)| h == hash) {
            let entry = kept.remove(at);
            let weights = Arc::clone(&entry.1);
            kept.push(entry);
            return Some(weights);
        }
        let weights: Arc<[f32]> = read()?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if kept.len() >= MODELS_KEPT {
            kept.remove(0);
        }
        kept.push((*hash, Arc::clone(&weights)));
        Some(weights)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Vec<(blake3::Hash, Arc<[f32]>)>> {
        crate::sync::lock(&self.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn weights_are_read_once_and_only_the_last_used_models_kept() {
        let cache = WeightsCache::default();
        let models: Vec<(blake3::Hash, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let b = bytes(&[f32::from(i), 0.5]);
                (blake3::hash(&b), b)
            })
            .collect();
        let reads = std::cell::Cell::new(0);
        let get = |(hash, b): &(blake3::Hash, Vec<u8>)| {
            cache
                .get_or_read(hash, || {
                    reads.set(reads.get() + 1);
                    Some(b.clone())
                })
                .unwrap()
        };
        assert_eq!(&*get(&models[0]), &[0.0, 0.5]);
        assert_eq!(&*get(&models[0]), &[0.0, 0.5]);
        assert_eq!(&*get(&models[1]), &[1.0, 0.5]);
        assert_eq!(reads.get(), 2, "a model read twice");
        // Model 1 was used last but model 0 just now: a third model pushes out model 1.
        get(&models[0]);
        assert_eq!(&*get(&models[2]), &[2.0, 0.5]);
        assert_eq!(reads.get(), 3);
        get(&models[0]);
        assert_eq!(reads.get(), 3, "model 0, used last, was dropped");
        get(&models[1]);
        assert_eq!(reads.get(), 4, "model 1, used least recently, was kept");
    }

    #[test]
    fn weights_the_pool_lacks_are_none_and_not_kept() {
        let cache = WeightsCache::default();
        let hash = blake3::hash(b"gone");
        assert!(cache.get_or_read(&hash, || None).is_none());
        assert!(cache.lock().is_empty());
    }
}
