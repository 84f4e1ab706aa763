// Escape-time Mandelbrot: one invocation per pixel, writing the iteration count at which the point
// escaped (or max_iter if it did not). Turn the output into a picture with the `mandelbrot-png` example.

@group(0) @binding(0) var<storage, read_write> iterations: array<u32>;
@group(0) @binding(1) var<uniform> size: vec4<u32>;  // width, height, max_iter, unused
@group(0) @binding(2) var<uniform> view: vec4<f32>;  // centre x, centre y, units per pixel, unused

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let width = size.x;
    let height = size.y;
    if (gid.x >= width || gid.y >= height) {
        return;
    }
    let cx = view.x + (f32(gid.x) - f32(width) * 0.5) * view.z;
    let cy = view.y + (f32(gid.y) - f32(height) * 0.5) * view.z;
    var x = 0.0;
    var y = 0.0;
    var i = 0u;
    loop {
        if (i >= size.z || x * x + y * y > 4.0) {
            break;
        }
        let next_x = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = next_x;
        i++;
    }
    iterations[gid.y * width + gid.x] = i;
}
