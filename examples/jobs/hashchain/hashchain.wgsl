// A long job split into passes: every pass advances each of the chains by ROUNDS rounds of an integer
// hash (lowbias32). The provider can stop between passes, so a pass is the longest it keeps the GPU
// after its person comes back.

const ROUNDS: u32 = 2048u;

@group(0) @binding(0) var<storage, read_write> chains: array<u32>;

fn lowbias32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@compute @workgroup_size(64)
fn advance(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= arrayLength(&chains) {
        return;
    }
    var x = chains[i] + i;
    for (var r = 0u; r < ROUNDS; r++) {
        x = lowbias32(x);
    }
    chains[i] = x;
}
