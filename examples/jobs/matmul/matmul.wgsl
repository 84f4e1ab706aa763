// C = A × B for row-major f32 matrices: A is m×k, B is k×n, C is m×n.
// Tiled through workgroup memory: each 16×16 workgroup computes a 16×16 block of C.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: vec4<u32>; // m, k, n, unused

const TILE: u32 = 16u;
var<workgroup> tile_a: array<f32, 256>;
var<workgroup> tile_b: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = dims.x;
    let k = dims.y;
    let n = dims.z;
    let row = gid.y;
    let col = gid.x;
    var sum = 0.0;
    for (var t = 0u; t < (k + TILE - 1u) / TILE; t++) {
        let a_col = t * TILE + lid.x;
        let b_row = t * TILE + lid.y;
        var va = 0.0;
        if (row < m && a_col < k) { va = a[row * k + a_col]; }
        var vb = 0.0;
        if (b_row < k && col < n) { vb = b[b_row * n + col]; }
        tile_a[lid.y * TILE + lid.x] = va;
        tile_b[lid.y * TILE + lid.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            sum += tile_a[lid.y * TILE + i] * tile_b[i * TILE + lid.x];
        }
        workgroupBarrier();
    }
    if (row < m && col < n) {
        c[row * n + col] = sum;
    }
}
