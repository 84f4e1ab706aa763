//! all-MiniLM-L6-v2, the real model, as `./scripts/setup` puts it under .tools/models: its token ids
//! against the reference tokenizer, the GPU against the f64 CPU forward pass, and the published
//! similarities. Kept to a few short sentences: llvmpipe on two cores is slow.

use std::path::PathBuf;

use idlegrid::embed::{DEFAULT_TOKEN_BUDGET, Model, reference};
use idlegrid::gpu::{AdapterChoice, Executor};
use idlegrid::job::JobLimits;

const SENTENCES: [&str; 3] = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
];

fn model() -> Option<Model> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/models/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").exists() {
        // ./scripts/setup puts it there; without it these tests have nothing to check.
        eprintln!(
            "skipped: {} is missing (run ./scripts/setup)",
            dir.display()
        );
        return None;
    }
    Some(Model::load(&dir, &JobLimits::default()).unwrap())
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn minilm_token_ids_match_the_reference_tokenizer() {
    let Some(model) = model() else { return };
    assert_eq!(model.name(), "all-MiniLM-L6-v2");
    assert_eq!(model.config.max_len, 256);
    let ids = model
        .tokenize(&texts(&[
            SENTENCES[0],
            SENTENCES[1],
            "Café naïve résumé — 東京 idlegrid's GPUs!",
        ]))
        .unwrap();
    // From the Python `tokenizers` package (0.22.1) on the same tokenizer.json, padding off,
    // truncation at 256, as sentence-transformers feeds the model.
    assert_eq!(ids[0], [101, 1996, 4633, 2003, 8403, 2651, 1012, 102]);
    assert_eq!(ids[1], [101, 2009, 1005, 1055, 2061, 11559, 2648, 999, 102]);
    assert_eq!(
        ids[2],
        [
            101, 7668, 15743, 13746, 1517, 1879, 1755, 18373, 16523, 3593, 1005, 1055, 14246, 2271,
            999, 102
        ]
    );
    let long = model.tokenize(&["word ".repeat(300)]).unwrap();
    assert_eq!(long[0].len(), 256);
    assert_eq!((long[0][0], long[0][1], long[0][255]), (101, 2773, 102));
}

#[test]
fn minilm_on_the_gpu_matches_f64_and_the_published_similarities() {
    let Some(model) = model() else { return };
    let mut executor = Executor::new(&AdapterChoice::default()).unwrap();
    let input = texts(&SENTENCES);
    let out = model
        .embed_local(&mut executor, &input, DEFAULT_TOKEN_BUDGET)
        .unwrap();
    assert_eq!(out.vectors.len(), 3);
    assert_eq!(out.vectors[0].len(), 384);
    let weights = model.weights_f32();
    let ids = model.tokenize(&input).unwrap();
    let gpu: Vec<Vec<f64>> = out
        .vectors
        .iter()
        .map(|v| v.iter().map(|x| f64::from(*x)).collect())
        .collect();
    for (i, (vector, tokens)) in gpu.iter().zip(&ids).enumerate() {
        let cpu = reference::embed_text(&model, &weights, tokens);
        let cos = reference::cosine(vector, &cpu);
        assert!(cos >= 0.99999, "sentence {i}: GPU vs f64 cosine {cos}");
    }
    // sentence-transformers' model card for all-MiniLM-L6-v2.
    let published = [((0, 1), 0.6660), ((0, 2), 0.1046), ((1, 2), 0.1411)];
    for ((a, b), expected) in published {
        let similarity = reference::cosine(&gpu[a], &gpu[b]);
        assert!(
            (similarity - expected).abs() <= 1e-3,
            "similarity of {a} and {b}: {similarity:.4}, published {expected}"
        );
    }
}

/// Every run of `block` weights rounded to int8 with its own scale: finer than the per-tensor int8 a
/// provider cutting memory would use, so closer to the honest answer.
fn int8(weights: &[u8], block: usize) -> Vec<u8> {
    let mut w: Vec<f32> = weights
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for chunk in w.chunks_mut(block) {
        let scale = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
        if scale > 0.0 {
            chunk
                .iter_mut()
                .for_each(|v| *v = (*v / scale).round() * scale);
        }
    }
    w.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn a_provider_running_int8_weights_disagrees_with_honest_replicas() {
    use idlegrid::job::BufferInit;
    use idlegrid::pool::verify::{Candidate, Comparison, Verdict, judge};
    let Some(model) = model() else { return };
    let batch = model
        .batches(&texts(&SENTENCES), DEFAULT_TOKEN_BUDGET)
        .unwrap()
        .remove(0);
    let honest_job = batch.local_job(&model).unwrap();
    let mut cheat_job = honest_job.clone();
    let BufferInit::Bytes(weights) = &honest_job.buffers[0].init else {
        panic!("weights are in the local job");
    };
    cheat_job.buffers[0].init = BufferInit::Bytes(int8(weights, 384));
    let mut executor = Executor::new(&AdapterChoice::default()).unwrap();
    let mut embeddings =
        |job| idlegrid::embed::embeddings_output(executor.run(job).unwrap().outputs).unwrap();
    let honest = embeddings(&honest_job);
    let cheat = embeddings(&cheat_job);
    // An honest replica from another GPU differs in the last bit of every value.
    let other_gpu: Vec<u8> = honest
        .chunks_exact(4)
        .flat_map(|c| {
            f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ 1).to_le_bytes()
        })
        .collect();
    let candidate = |bytes: &[u8]| Candidate {
        provider: iroh::SecretKey::generate().public(),
        digest: idlegrid::statement::Id(*blake3::hash(bytes).as_bytes()),
        outputs: vec![bytes.to_vec()],
    };
    let comparison = Comparison::Cosine(honest_job.verify.cosine.unwrap());
    let verdict = judge(
        &[candidate(&honest), candidate(&cheat), candidate(&other_gpu)],
        2,
        comparison,
    );
    assert_eq!(
        verdict,
        Verdict::Agreed {
            agree: vec![0, 2],
            disagree: vec![1]
        }
    );
}
