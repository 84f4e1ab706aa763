//! Runs examples/jobs/mandelbrot on the best GPU and saves the picture as a PNG.
//!
//! cargo run -p idlegrid --example mandelbrot-png -- [OUT.png]

use std::path::{Path, PathBuf};

use anyhow::Context;
use idlegrid::{AdapterChoice, Executor, Job, JobLimits};

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("mandelbrot.png"), PathBuf::from);
    let job_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs/mandelbrot/job.toml");
    let job = Job::load(&job_path, &JobLimits::default())?;
    let [width, height, max_iter] = size(&job)?;
    let output = Executor::new(&AdapterChoice::from_flag_or_env(None))?.run(&job)?;
    let iterations = &output.outputs[0].bytes;
    let pixels: Vec<u8> = iterations
        .chunks_exact(4)
        .flat_map(|c| colour(u32::from_le_bytes([c[0], c[1], c[2], c[3]]), max_iter))
        .collect();
    let file =
        std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    eprintln!(
        "wrote {} ({width}x{height}, {:.1} ms on {})",
        out.display(),
        output.gpu_time.as_secs_f64() * 1e3,
        output.adapter
    );
    Ok(())
}

/// Width, height and iteration cap, from the job's `size` uniform.
fn size(job: &Job) -> anyhow::Result<[u32; 3]> {
    let spec = job
        .buffers
        .iter()
        .find(|b| b.name == "size")
        .context("the job has no `size` buffer")?;
    let idlegrid::job::BufferInit::Bytes(bytes) = &spec.init else {
        anyhow::bail!("`size` holds no values")
    };
    let word = |i: usize| {
        u32::from_le_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ])
    };
    Ok([word(0), word(1), word(2)])
}

/// Black inside the set; outside, a smooth ramp from deep blue through orange to white.
fn colour(iterations: u32, max_iter: u32) -> [u8; 3] {
    if iterations >= max_iter {
        return [0, 0, 0];
    }
    let t = (iterations as f32 / 48.0).min(1.0).sqrt();
    let lerp = |a: f32, b: f32, t: f32| (a + (b - a) * t) as u8;
    if t < 0.5 {
        let t = t * 2.0;
        [
            lerp(10.0, 240.0, t),
            lerp(20.0, 140.0, t),
            lerp(80.0, 30.0, t),
        ]
    } else {
        let t = (t - 0.5) * 2.0;
        [
            lerp(240.0, 255.0, t),
            lerp(140.0, 255.0, t),
            lerp(30.0, 255.0, t),
        ]
    }
}
