//! Each kernel against the f64 reference on seeded random data, and a tiny random 2-layer BERT end to end.

use std::sync::Mutex;

use super::model::Layout;
use super::reference as cpu;
use super::*;
use crate::gpu::{AdapterChoice, Executor};
use crate::job::BufferInit;

/// One executor for the module's tests: a device per test would dominate their time on llvmpipe.
static EXECUTOR: Mutex<Option<Executor>> = Mutex::new(None);

fn run(job: &Job) -> Vec<crate::gpu::OutputBuffer> {
    let mut guard = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    let executor = guard.get_or_insert_with(|| Executor::new(&AdapterChoice::default()).unwrap());
    executor.run(job).unwrap().outputs
}

fn tiny(spec: TinySpec) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), spec).unwrap();
    let model = Model::load(dir.path(), &crate::JobLimits::default()).unwrap();
    (dir, model)
}

fn floats(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

fn bytes_of(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Largest difference relative to the largest reference magnitude.
fn assert_close(gpu: &[f64], reference: &[f64], tolerance: f64, what: &str) {
    assert_eq!(gpu.len(), reference.len(), "{what}: lengths");
    let scale = reference.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    let worst = gpu
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f64::max);
    assert!(
        worst <= tolerance,
        "{what}: off by {worst:e} of the largest value"
    );
}

/// A batch of texts of the given lengths with random token ids.
fn random_batch(model: &Model, lengths: &[usize], rng: &mut Seeded) -> Batch {
    let tokens = lengths
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| (rng.next_u64() % u64::from(model.config.vocab)) as u32)
                .collect()
        })
        .collect();
    Batch {
        indices: (0..lengths.len()).collect(),
        tokens,
    }
}

/// The batch's job cut down to `entries`, with `inputs` (buffer name, values) set and `output` read back.
fn kernel_job(
    model: &Model,
    batch: &Batch,
    entries: &[&str],
    inputs: &[(&str, Vec<f32>)],
    output: &str,
) -> Job {
    let mut job = batch.local_job(model).unwrap();
    job.passes.retain(|p| entries.contains(&p.entry.as_str()));
    assert_eq!(job.passes.len(), entries.len(), "entry points {entries:?}");
    for buffer in &mut job.buffers {
        if let Some((_, values)) = inputs.iter().find(|(name, _)| *name == buffer.name) {
            assert_eq!(
                buffer.init.size(),
                values.len() as u64 * 4,
                "{}",
                buffer.name
            );
            buffer.init = BufferInit::Bytes(bytes_of(values));
        }
        buffer.output = buffer.name == output;
    }
    job
}

fn output(job: &Job) -> Vec<f64> {
    floats(&run(job)[0].bytes)
}

const LENGTHS: [usize; 3] = [5, 12, 1];

#[test]
fn embedding_lookup_with_layer_norm_matches_the_reference() {
    let (_dir, model) = tiny(TinySpec::default());
    let c = &model.config;
    let w = model.weights_f32();
    let layout = Layout::new(c);
    let batch = random_batch(&model, &LENGTHS, &mut Seeded::new(11));
    let job = kernel_job(&model, &batch, &["embed"], &[], "hidden");
    let gpu = output(&job);
    let (h, seq) = (c.hidden as usize, batch.seq() as usize);
    let g = &w[layout.embed_norm[0] as usize..][..h];
    let b = &w[layout.embed_norm[1] as usize..][..h];
    for (t, tokens) in batch.tokens.iter().enumerate() {
        let reference = cpu::layer_norm(
            &cpu::embed_lookup(&w, &layout, c, tokens),
            g,
            b,
            f64::from(c.eps),
        );
        let rows = &gpu[t * seq * h..][..tokens.len() * h];
        assert_close(rows, &reference, 1e-5, "embedding");
    }
}

#[test]
fn matmul_kernels_with_bias_gelu_and_residual_match_the_reference() {
    // Sizes that are not multiples of the 64×64 tile, so the edges are exercised.
    let (_dir, model) = tiny(TinySpec {
        hidden: 72,
        heads: 6,
        intermediate: 136,
        ..TinySpec::default()
    });
    let c = &model.config;
    let w = model.weights_f32();
    let l = &Layout::new(c).layers[1];
    let mut rng = Seeded::new(12);
    let batch = random_batch(&model, &LENGTHS, &mut rng);
    let rows = batch.padded_tokens() as usize;
    let (h, i) = (c.hidden as usize, c.intermediate as usize);
    let hidden = rng.values(rows * h, 1.5);
    let context = rng.values(rows * h, 1.5);
    let ffn = rng.values(rows * i, 1.5);
    let wide = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<f64>>();
    let slice = |[wo, bo]: [u64; 2], n: usize, k: usize| {
        (&w[wo as usize..][..n * k], &w[bo as usize..][..n])
    };

    let (wq, bq) = slice(l.qkv, 3 * h, h);
    let job = kernel_job(
        &model,
        &batch,
        &["l1_qkv"],
        &[("hidden", hidden.clone())],
        "qkv",
    );
    assert_close(
        &output(&job),
        &cpu::linear(&wide(&hidden), wq, bq),
        1e-5,
        "qkv",
    );

    let (wo, bo) = slice(l.attn_out, h, h);
    let job = kernel_job(
        &model,
        &batch,
        &["l1_attn_out"],
        &[("hidden", hidden.clone()), ("context", context.clone())],
        "sum",
    );
    let reference = cpu::add(&cpu::linear(&wide(&context), wo, bo), &wide(&hidden));
    assert_close(
        &output(&job),
        &reference,
        1e-5,
        "attention output + residual",
    );

    let (w1, b1) = slice(l.ffn_in, i, h);
    let job = kernel_job(
        &model,
        &batch,
        &["l1_ffn_in"],
        &[("hidden", hidden.clone())],
        "ffn",
    );
    let reference: Vec<f64> = cpu::linear(&wide(&hidden), w1, b1)
        .into_iter()
        .map(cpu::gelu)
        .collect();
    assert_close(&output(&job), &reference, 1e-5, "ffn in + gelu");

    let (w2, b2) = slice(l.ffn_out, h, i);
    let job = kernel_job(
        &model,
        &batch,
        &["l1_ffn_out"],
        &[("hidden", hidden.clone()), ("ffn", ffn.clone())],
        "sum",
    );
    let reference = cpu::add(&cpu::linear(&wide(&ffn), w2, b2), &wide(&hidden));
    assert_close(&output(&job), &reference, 1e-5, "ffn out + residual");
}

#[test]
fn gelu_is_the_erf_form() {
    // Values chosen around where the tanh approximation and erf differ most.
    let (_dir, model) = tiny(TinySpec::default());
    let c = &model.config;
    let batch = random_batch(&model, &[1], &mut Seeded::new(1));
    let w = model.weights_f32();
    let l = &Layout::new(c).layers[0];
    let mut hidden = vec![0.0f32; c.hidden as usize];
    hidden[0] = 1.0;
    let job = kernel_job(&model, &batch, &["l0_ffn_in"], &[("hidden", hidden)], "ffn");
    let gpu = output(&job);
    for (o, value) in gpu.iter().enumerate() {
        let pre = f64::from(w[l.ffn_in[0] as usize + o * c.hidden as usize])
            + f64::from(w[l.ffn_in[1] as usize + o]);
        assert!(
            (value - cpu::gelu(pre)).abs() < 2e-6,
            "{o}: {value} vs {}",
            cpu::gelu(pre)
        );
    }
}

#[test]
fn attention_leaves_padding_out_and_matches_the_reference() {
    let (_dir, model) = tiny(TinySpec::default());
    let c = &model.config;
    let mut rng = Seeded::new(13);
    let batch = random_batch(&model, &LENGTHS, &mut rng);
    let (h, seq) = (c.hidden as usize, batch.seq() as usize);
    let qkv = rng.values(batch.padded_tokens() as usize * 3 * h, 2.0);
    let job = kernel_job(
        &model,
        &batch,
        &["l0_attention"],
        &[("qkv", qkv.clone())],
        "context",
    );
    let gpu = output(&job);
    for (t, tokens) in batch.tokens.iter().enumerate() {
        let text: Vec<f64> = qkv[t * seq * 3 * h..][..tokens.len() * 3 * h]
            .iter()
            .map(|v| f64::from(*v))
            .collect();
        let reference = cpu::attention(&text, tokens.len(), h, c.heads as usize);
        assert_close(
            &gpu[t * seq * h..][..tokens.len() * h],
            &reference,
            1e-5,
            "attention",
        );
    }
}

#[test]
fn layer_norm_matches_the_reference() {
    let (_dir, model) = tiny(TinySpec::default());
    let c = &model.config;
    let w = model.weights_f32();
    let l = &Layout::new(c).layers[0];
    let mut rng = Seeded::new(14);
    let batch = random_batch(&model, &LENGTHS, &mut rng);
    let h = c.hidden as usize;
    // An offset far from zero: a one-pass variance would lose it.
    let sum: Vec<f32> = rng
        .values(batch.padded_tokens() as usize * h, 3.0)
        .iter()
        .map(|v| v + 40.0)
        .collect();
    let job = kernel_job(
        &model,
        &batch,
        &["l0_ffn_norm"],
        &[("sum", sum.clone())],
        "hidden",
    );
    let wide: Vec<f64> = sum.iter().map(|v| f64::from(*v)).collect();
    let reference = cpu::layer_norm(
        &wide,
        &w[l.ffn_norm[0] as usize..][..h],
        &w[l.ffn_norm[1] as usize..][..h],
        f64::from(c.eps),
    );
    assert_close(&output(&job), &reference, 1e-5, "layer norm");
}

#[test]
fn mean_pooling_and_l2_normalisation_match_the_reference() {
    let (_dir, model) = tiny(TinySpec::default());
    let c = &model.config;
    let mut rng = Seeded::new(15);
    let batch = random_batch(&model, &LENGTHS, &mut rng);
    let (h, seq) = (c.hidden as usize, batch.seq() as usize);
    let hidden = rng.values(batch.padded_tokens() as usize * h, 2.0);
    let job = kernel_job(
        &model,
        &batch,
        &["pool"],
        &[("hidden", hidden.clone())],
        "embeddings",
    );
    let gpu = output(&job);
    for (t, tokens) in batch.tokens.iter().enumerate() {
        let rows: Vec<f64> = hidden[t * seq * h..][..tokens.len() * h]
            .iter()
            .map(|v| f64::from(*v))
            .collect();
        let reference = cpu::l2_normalize(&cpu::pool(&rows, h, Pooling::Mean));
        assert_close(&gpu[t * h..][..h], &reference, 1e-6, "pooling");
    }
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn tiny_bert_end_to_end_matches_the_f64_forward_pass_in_the_callers_order() {
    let (_dir, model) = tiny(TinySpec::default());
    let input = texts(&[
        "The weather is lovely today.",
        "a",
        "He drove to the stadium, and the cat sat on the mat!",
        "It's so sunny outside!",
        "zebra quartz 42",
    ]);
    let mut guard = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    let executor = guard.get_or_insert_with(|| Executor::new(&AdapterChoice::default()).unwrap());
    // A budget that forces several batches, so the order must be restored.
    let out = model
        .embed_local(executor, &input, model.config.max_len)
        .unwrap();
    let alone = model
        .embed_local(executor, &input[2..3], DEFAULT_TOKEN_BUDGET)
        .unwrap();
    drop(guard);
    let tokens = model.tokenize(&input).unwrap();
    assert_eq!(
        out.tokens,
        tokens.iter().map(|t| t.len() as u64).sum::<u64>()
    );
    let w = model.weights_f32();
    for (i, (vector, ids)) in out.vectors.iter().zip(&tokens).enumerate() {
        let reference = cpu::embed_text(&model, &w, ids);
        let gpu: Vec<f64> = vector.iter().map(|v| f64::from(*v)).collect();
        let cos = cpu::cosine(&gpu, &reference);
        assert!(cos >= 0.99999, "text {i}: cosine {cos}");
        let norm = gpu.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "text {i}: norm {norm}");
    }
    // Padding in a batch does not change a text's vector.
    let cos = cpu::cosine(
        &out.vectors[2]
            .iter()
            .map(|v| f64::from(*v))
            .collect::<Vec<_>>(),
        &alone.vectors[0]
            .iter()
            .map(|v| f64::from(*v))
            .collect::<Vec<_>>(),
    );
    assert!(cos > 0.999999, "batched vs alone: {cos}");
}

#[test]
fn texts_past_the_maximum_length_are_truncated_with_their_end_token() {
    let (_dir, model) = tiny(TinySpec::default());
    let long = vec!["cat ".repeat(500)];
    let tokens = model.tokenize(&long).unwrap();
    assert_eq!(tokens[0].len(), model.config.max_len as usize);
    assert_eq!(tokens[0].first(), Some(&2), "[CLS]");
    assert_eq!(tokens[0].last(), Some(&3), "[SEP]");
}

#[test]
fn a_model_that_cannot_fit_the_job_limits_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(
        dir.path(),
        TinySpec {
            layers: 9,
            ..TinySpec::default()
        },
    )
    .unwrap();
    let err = Model::load(dir.path(), &crate::JobLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("passes per job (65 (9 layers))") && err.contains("64 passes a job"),
        "{err}"
    );
    write_tiny_model(dir.path(), TinySpec::default()).unwrap();
    let config = read_config(dir.path()).unwrap();
    let err = config
        .check_fits(&crate::JobLimits::default(), 1 << 16)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weights") && err.contains("storage-binding limit of 64 KiB"),
        "{err}"
    );
}

#[test]
fn cheating_providers_disagree_with_honest_replicas_by_cosine() {
    // Weights rounded to int8 are caught with the real model (tests/jobs/embeddings.rs): this random
    // one's uniform weights lose too little to int8 to say anything.
    use crate::pool::verify::{Candidate, Comparison, Verdict, judge};
    let (_dir, model) = tiny(TinySpec::default());
    let request = |items: &[&str]| {
        model
            .batches(&texts(items), DEFAULT_TOKEN_BUDGET)
            .unwrap()
            .remove(0)
    };
    let batch = request(&[
        "The weather is lovely today.",
        "He drove to the stadium.",
        "the cat sat on the mat",
    ]);
    let previous = request(&[
        "It's so sunny outside!",
        "a dog is idle",
        "the grid of numbers",
    ]);
    let honest_job = batch.local_job(&model).unwrap();
    let embeddings = |job: &Job| embeddings_output(run(job)).unwrap();
    let honest = embeddings(&honest_job);

    let mut skipped = honest_job.clone();
    skipped.passes.retain(|p| !p.entry.starts_with("l1_"));
    let cheats = [
        ("a skipped layer", embeddings(&skipped)),
        (
            "the previous request's vectors",
            embeddings(&previous.local_job(&model).unwrap()),
        ),
    ];
    let comparison = Comparison::Cosine(honest_job.verify.cosine.unwrap());
    let candidate = |bytes: &[u8]| Candidate {
        provider: iroh::SecretKey::generate().public(),
        digest: crate::statement::Id(*blake3::hash(bytes).as_bytes()),
        outputs: vec![bytes.to_vec()],
    };
    // An honest replica on another GPU differs in the last bits: perturb every value by one ulp.
    let other_gpu: Vec<u8> = honest
        .chunks_exact(4)
        .flat_map(|c| {
            f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ 1).to_le_bytes()
        })
        .collect();
    assert_ne!(other_gpu, honest);
    for (what, cheat) in &cheats {
        assert_eq!(cheat.len(), honest.len(), "{what} must look the part");
        let verdict = judge(
            &[candidate(&honest), candidate(cheat), candidate(&other_gpu)],
            2,
            comparison,
        );
        assert_eq!(
            verdict,
            Verdict::Agreed {
                agree: vec![0, 2],
                disagree: vec![1]
            },
            "{what}"
        );
    }
}

#[test]
fn an_embedding_job_is_recognised_by_its_source_and_nothing_else_is() {
    let (_dir, model) = tiny(TinySpec::default());
    let job = random_batch(&model, &LENGTHS, &mut Seeded::new(3)).job(&model, 2);
    let (config, hash, size) = embedding_model(&job).unwrap();
    assert_eq!(config, model.config);
    assert_eq!(
        (hash, size),
        (model.weights_hash, model.weights.len() as u64)
    );
    let mut tampered = job.clone();
    tampered.wgsl = tampered.wgsl.replace("exp(s - m_new)", "0.0");
    assert!(embedding_model(&tampered).is_none(), "a changed kernel");
    let mut smaller = job.clone();
    smaller.buffers[0].init = BufferInit::Blob {
        hash: *hash.as_bytes(),
        size: size - 4,
    };
    assert!(
        embedding_model(&smaller).is_none(),
        "weights of the wrong size"
    );
    let matmul = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/jobs/matmul/job.toml");
    let other = Job::load(&matmul, &crate::JobLimits::default()).unwrap();
    assert!(embedding_model(&other).is_none(), "another job");
}

/// The pool's side of embedding work, through its API with a real GPU run for every answer: a
/// provider that leased an embedding job is sent an embedding canary whose answer the pool computed on
/// its CPU; honest vectors pass it, a provider skipping a layer fails it.
#[test]
fn a_pool_checks_embedding_work_with_canaries_it_answers_on_its_cpu() {
    use crate::protocol::{LeaseOffer, WorkReply};
    let (_dir, model) = tiny(TinySpec::default());
    let dir = tempfile::tempdir().unwrap();
    let CanaryPool {
        pool,
        submitter,
        gpu,
    } = canary_pool(dir.path());
    let ask = |who: &iroh::PublicKey| -> LeaseOffer {
        match pool.ask(who, &gpu, 1, &[], None).unwrap() {
            WorkReply::Work { mut leases, .. } => leases.remove(0),
            other => panic!("{other:?}"),
        }
    };
    let run_lease = |offer: &LeaseOffer, skip_layer: bool| -> Vec<u8> {
        let mut job = offer.manifest.clone().with_blobs(|h| pool.blob(h)).unwrap();
        if skip_layer {
            job.passes.retain(|p| !p.entry.starts_with("l1_"));
        }
        embeddings_output(run(&job)).unwrap()
    };
    let answer = |who: &iroh::PublicKey, offer: &LeaseOffer, bytes: Vec<u8>| {
        pool.submit_result(who, offer.lease, vec![("embeddings".into(), bytes)], 10)
            .unwrap();
    };
    for (nonce, input) in [
        (1, "The weather is lovely today."),
        (2, "He drove to the stadium."),
    ] {
        let manifest = model
            .batches(&texts(&[input]), DEFAULT_TOKEN_BUDGET)
            .unwrap()[0]
            .job(&model, 1);
        let (id, missing) = pool.offer_job(&submitter, &manifest, nonce).unwrap();
        if !missing.unwrap().is_empty() {
            pool.store_blob(&model.weights_hash, &model.weights)
                .unwrap();
        }
        pool.enqueue(&submitter, id, &manifest).unwrap();
    }
    let honest = iroh::SecretKey::from_bytes(&[7; 32]).public();
    let cheat = iroh::SecretKey::from_bytes(&[8; 32]).public();
    for (who, skips) in [(honest, false), (cheat, true)] {
        let paid = ask(&who);
        answer(&who, &paid, run_lease(&paid, false));
        let canary = ask(&who);
        assert_ne!(canary.job, paid.job);
        assert!(
            embedding_model(&canary.manifest).is_some(),
            "the canary is embedding work too"
        );
        answer(&who, &canary, run_lease(&canary, skips));
    }
    assert_eq!(
        pool.reputation(&honest).unwrap(),
        2,
        "a paid job and a passed canary"
    );
    assert!(
        pool.reputation(&cheat).unwrap() < 0,
        "a failed canary is a strike"
    );
}

/// The pool makes an embedding canary's answer outside the ask's transaction: while one ask waits for
/// the canary weights (held here), the pool's database serves everyone else, and the asking provider
/// still gets its paid lease. The weights are read from the blob store once: a second provider's
/// canary, drawn after the weights' file is gone, is still an embedding canary.
#[test]
fn embedding_canaries_are_made_outside_the_ask_with_weights_read_once() {
    use crate::protocol::{LeaseOffer, WorkReply};
    let (_dir, model) = tiny(TinySpec::default());
    let dir = tempfile::tempdir().unwrap();
    let CanaryPool {
        pool,
        submitter,
        gpu,
    } = canary_pool(dir.path());
    let ask = |who: &iroh::PublicKey| -> Vec<LeaseOffer> {
        match pool.ask(who, &gpu, 1, &[], None).unwrap() {
            WorkReply::Work { leases, .. } => leases,
            other => panic!("{other:?}"),
        }
    };
    let queue = |nonce: u64, input: &str| {
        let manifest = model
            .batches(&texts(&[input]), DEFAULT_TOKEN_BUDGET)
            .unwrap()[0]
            .job(&model, 1);
        let (id, _) = pool.offer_job(&submitter, &manifest, nonce).unwrap();
        pool.store_blob(&model.weights_hash, &model.weights)
            .unwrap();
        pool.enqueue(&submitter, id, &manifest).unwrap();
        id
    };
    let job = queue(1, "The weather is lovely today.");
    let first = iroh::SecretKey::from_bytes(&[7; 32]).public();
    let second = iroh::SecretKey::from_bytes(&[8; 32]).public();
    let mut second_job = job;
    std::thread::scope(|scope| {
        let held = pool.hold_canary_weights();
        let asking = scope.spawn(|| ask(&first));
        // The first ask's lease is committed while it waits for the weights to make its canary.
        let mut leased = false;
        for _ in 0..600 {
            leased = pool.progress(&job).unwrap().progress.running == 1;
            if leased {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(leased, "the first ask never committed its lease");
        assert!(
            !asking.is_finished(),
            "the canary was made without its weights"
        );
        // Meanwhile the pool takes a job.
        second_job = queue(2, "He drove to the stadium.");
        assert_eq!(pool.submitted_jobs().unwrap(), 2);
        assert!(!asking.is_finished());
        drop(held);
        let paid = asking.join().unwrap();
        assert_eq!(paid[0].job, job);
    });
    let canary = ask(&first).remove(0);
    assert!(embedding_model(&canary.manifest).is_some(), "{canary:?}");

    std::fs::remove_file(
        dir.path()
            .join("pool/blobs")
            .join(model.weights_hash.to_hex().as_str()),
    )
    .unwrap();
    assert!(pool.blob(&model.weights_hash).is_none());
    assert_eq!(ask(&second)[0].job, second_job);
    let canary = ask(&second).remove(0);
    assert!(
        embedding_model(&canary.manifest).is_some(),
        "the second canary read the weights again: {}",
        canary.manifest.name
    );
}

/// The benchmark's batch runs the model it is given, whole, and names it; without one, the tiny model.
#[test]
fn the_benchmark_batch_is_real_work_on_the_model_it_names() {
    let (_dir, model) = tiny(TinySpec {
        layers: 1,
        ..TinySpec::default()
    });
    let (job, name) = bench_job(Some(&model));
    assert_eq!(name, model.name());
    let vectors = floats(&embeddings_output(run(&job)).unwrap());
    let hidden = model.config.hidden as usize;
    assert_eq!(vectors.len(), BENCH_TEXTS as usize * hidden);
    let (other, tiny_name) = bench_job(None);
    assert_eq!(tiny_name, TINY_MODEL);
    assert_ne!(
        other.wgsl, job.wgsl,
        "the tiny model's kernels were run instead"
    );
}

#[test]
fn the_tiny_model_in_memory_is_the_one_written_to_disk() {
    let spec = TinySpec::default();
    let (_dir, model) = tiny(spec);
    let (config, weights) = tiny_weights(spec, &model.config.name);
    assert_eq!(config, model.config);
    assert_eq!(weights, *model.weights);
    let sample = sample_embedding_job(8, 1);
    assert_eq!(sample.name, "Embedding 8 texts (tiny-bert)");
    let vectors = embeddings_output(run(&sample)).unwrap();
    assert_eq!(vectors.len(), 8 * 64 * 4);
}

/// A pool that sends a canary with every lease, trusting no provider before 10 good results, and the
/// GPU of the providers asking it.
struct CanaryPool {
    pool: crate::pool::Pool,
    submitter: iroh::PublicKey,
    gpu: crate::protocol::Capabilities,
}

fn canary_pool(dir: &std::path::Path) -> CanaryPool {
    use crate::pool::verify::ReplicationPolicy;
    use crate::pool::{Pool, PoolConfig};
    let key = iroh::SecretKey::from_bytes(&[1; 32]);
    let submitter = crate::client::own_submitter_key(&key).public();
    let config = PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            trusted_at: 10,
        },
        canary_rate: 1.0,
        ..PoolConfig::default()
    };
    CanaryPool {
        pool: Pool::open(&dir.join("pool"), key, config).unwrap(),
        submitter,
        gpu: crate::pool::tests::gpu(),
    }
}
