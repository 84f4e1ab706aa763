// Brute-force nearest neighbour: for each query vector, the index of the closest database vector by
// squared Euclidean distance (the lowest index on a tie), and that distance.
// One workgroup per query: 64 invocations scan the database in strides, then reduce in workgroup memory.

@group(0) @binding(0) var<storage, read> database: array<f32>;  // count × dim
@group(0) @binding(1) var<storage, read> queries: array<f32>;   // queries × dim
@group(0) @binding(2) var<uniform> shape: vec4<u32>;            // count, dim, unused, unused
@group(0) @binding(3) var<storage, read_write> nearest: array<u32>;
@group(0) @binding(4) var<storage, read_write> distance: array<f32>;

const LANES: u32 = 64u;
var<workgroup> best_distance: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;

fn better(d: f32, i: u32, best_d: f32, best_i: u32) -> bool {
    return d < best_d || (d == best_d && i < best_i);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let count = shape.x;
    let dim = shape.y;
    let query = wid.x;
    var my_distance = 3.4e38;
    var my_index = 0xffffffffu;
    for (var i = lane; i < count; i += LANES) {
        var d = 0.0;
        for (var j = 0u; j < dim; j++) {
            let diff = database[i * dim + j] - queries[query * dim + j];
            d += diff * diff;
        }
        if (better(d, i, my_distance, my_index)) {
            my_distance = d;
            my_index = i;
        }
    }
    best_distance[lane] = my_distance;
    best_index[lane] = my_index;
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
        if (lane < stride) {
            let d = best_distance[lane + stride];
            let i = best_index[lane + stride];
            if (better(d, i, best_distance[lane], best_index[lane])) {
                best_distance[lane] = d;
                best_index[lane] = i;
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        nearest[query] = best_index[0];
        distance[query] = best_distance[0];
    }
}
