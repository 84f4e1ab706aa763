// The committed artifacts are exactly what the pinned compiler makes of the committed sources.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { compile } from "./compile.js";

const artifactsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "artifacts");

test("the committed artifacts match a fresh compile byte for byte", () => {
  const fresh = compile();
  assert.deepEqual([...fresh.keys()].sort(), fs.readdirSync(artifactsDir).sort());
  for (const [file, text] of fresh) {
    const committed = fs.readFileSync(path.join(artifactsDir, file));
    assert.ok(committed.equals(Buffer.from(text)), `${file} differs; run: npm --prefix contracts run compile`);
  }
});

test("the contract is built with the pinned compiler", () => {
  const { compiler } = JSON.parse(fs.readFileSync(path.join(artifactsDir, "Payouts.json"), "utf8"));
  const pinned = JSON.parse(fs.readFileSync(path.join(artifactsDir, "../package.json"), "utf8")).devDependencies.solc;
  assert.match(compiler, new RegExp(`^solc ${pinned.replaceAll(".", "\\.")}\\+`));
});
