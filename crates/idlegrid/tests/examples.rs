//! Each example job in examples/jobs, run on the GPU and checked against a CPU reference computed here.

mod common;

use common::*;

#[test]
fn matmul_matches_cpu_reference() {
    let (m, k, n) = (96, 64, 80);
    let a = f32s(&example_file("matmul/a.bin"));
    let b = f32s(&example_file("matmul/b.bin"));
    let out = executor().run(&example("matmul")).unwrap();
    let c = f32s(output(&out, "c"));
    assert_eq!(c.len(), m * n);
    let mut worst = 0.0f32;
    for row in 0..m {
        for col in 0..n {
            let expected: f32 = (0..k).map(|i| a[row * k + i] * b[i * n + col]).sum();
            worst = worst.max((c[row * n + col] - expected).abs());
        }
    }
    // 64 products of numbers in [-1, 1]: summation order alone moves the result by far less than this.
    assert!(
        worst < 1e-4,
        "largest difference from the CPU reference: {worst}"
    );
    assert_eq!(out.outputs[0].blake3, blake3::hash(output(&out, "c")));
}

#[test]
fn mandelbrot_matches_cpu_reference() {
    let (width, height, max_iter) = (320usize, 240usize, 256u32);
    let (centre_x, centre_y, scale) = (-0.6f32, 0.0f32, 0.0125f32);
    let out = executor().run(&example("mandelbrot")).unwrap();
    let gpu = u32s(output(&out, "iterations"));
    assert_eq!(gpu.len(), width * height);
    let mut differing = 0;
    for py in 0..height {
        for px in 0..width {
            let cx = centre_x + (px as f32 - width as f32 * 0.5) * scale;
            let cy = centre_y + (py as f32 - height as f32 * 0.5) * scale;
            let (mut x, mut y, mut i) = (0.0f32, 0.0f32, 0u32);
            while i < max_iter && x * x + y * y <= 4.0 {
                let next_x = x * x - y * y + cx;
                y = 2.0 * x * y + cy;
                x = next_x;
                i += 1;
            }
            let got = gpu[py * width + px];
            if got != i {
                differing += 1;
                // A GPU may fuse multiply-adds; rounding then matters only near the set's boundary,
                // where orbits are chaotic. A point that escapes quickly must agree exactly.
                assert!(
                    i >= 8 && got >= 8,
                    "pixel ({px}, {py}): GPU {got} iterations, CPU {i}"
                );
            }
        }
    }
    assert!(
        differing * 200 <= width * height,
        "{differing} of {} pixels differ",
        width * height
    );
    // The picture is the set: the far-left column escapes at once, the centre of the main cardioid never.
    assert_eq!(gpu[(height / 2) * width + 20 * width / 100], max_iter);
    assert!(gpu[0] <= 2, "corner took {} iterations", gpu[0]);
}

#[test]
fn nearest_neighbour_matches_cpu_reference_exactly() {
    let (count, dim, queries) = (5000usize, 24usize, 48usize);
    let database = f32s(&example_file("nearest/database.bin"));
    let query_vectors = f32s(&example_file("nearest/queries.bin"));
    let out = executor().run(&example("nearest")).unwrap();
    let nearest = u32s(output(&out, "nearest"));
    let distance = f32s(output(&out, "distance"));
    for q in 0..queries {
        let query = &query_vectors[q * dim..(q + 1) * dim];
        let (best, best_distance) = (0..count)
            .map(|i| {
                let d: f32 = database[i * dim..(i + 1) * dim]
                    .iter()
                    .zip(query)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (i, d)
            })
            .fold((usize::MAX, f32::INFINITY), |best, cur| {
                if cur.1 < best.1 { cur } else { best }
            });
        // Small integer coordinates make every distance exact, so the answer must match bit for bit.
        assert_eq!(
            (nearest[q] as usize, distance[q]),
            (best, best_distance),
            "query {q}"
        );
    }
}
