//! Each example job in examples/jobs, run on the GPU and checked against a CPU reference computed here.

use crate::common;

use common::*;

#[test]
fn matmul_matches_cpu_reference() {
    assert_matmul(&executor().run(&example("matmul")).unwrap().outputs);
}

#[test]
fn mandelbrot_matches_cpu_reference() {
    assert_mandelbrot(&executor().run(&example("mandelbrot")).unwrap().outputs);
}

#[test]
fn nearest_neighbour_matches_cpu_reference_exactly() {
    assert_nearest(&executor().run(&example("nearest")).unwrap().outputs);
}
