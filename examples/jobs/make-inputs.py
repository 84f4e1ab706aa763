#!/usr/bin/env python3
"""Writes the example jobs' input files. Deterministic: running it again gives the same bytes.

The nearest-neighbour vectors hold small integers so that every distance is exact in f32 and the GPU's
answer can be compared bit for bit with a CPU reference.
"""
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_f32(path, values):
    path.write_bytes(struct.pack(f"<{len(values)}f", *values))


rng = random.Random(20261124)
write_f32(HERE / "matmul" / "a.bin", [rng.uniform(-1, 1) for _ in range(96 * 64)])
write_f32(HERE / "matmul" / "b.bin", [rng.uniform(-1, 1) for _ in range(64 * 80)])
write_f32(HERE / "nearest" / "database.bin", [float(rng.randint(-8, 8)) for _ in range(5000 * 24)])
write_f32(HERE / "nearest" / "queries.bin", [float(rng.randint(-8, 8)) for _ in range(48 * 24)])
