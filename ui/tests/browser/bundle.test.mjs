// The production build (dist/, what Tauri ships) holds the window and nothing of the test mocks,
// and loads nothing from the internet.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { UI_ROOT } from "./harness.mjs";

const DIST = join(UI_ROOT, "dist");

async function files(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

describe("production bundle", () => {
  it("exists (run `npm run build` first; test:browser does)", () => {
    assert.ok(existsSync(join(DIST, "index.html")));
  });

  it("holds no mock backend or fixtures", async () => {
    assert.ok(!existsSync(join(DIST, "mock.html")));
    for (const file of await files(DIST)) {
      const text = await readFile(file, "utf8");
      for (const marker of ["__idlegridMock", "mockIPC", "NVIDIA GeForce RTX 4070", "Render farm"]) {
        assert.ok(!text.includes(marker), `${file} contains ${marker}`);
      }
    }
  });

  it("loads its scripts, styles and fonts from itself only", async () => {
    for (const file of (await files(DIST)).filter((f) => /\.(html|css)$/.test(f))) {
      const text = await readFile(file, "utf8");
      assert.doesNotMatch(text, /(src|href)="(https?:)?\/\//, `${file} loads from elsewhere`);
      assert.doesNotMatch(text, /url\((["']?)(https?:)?\/\//, `${file} loads from elsewhere`);
      assert.doesNotMatch(text, /@import|@font-face/, `${file} pulls in fonts or stylesheets`);
    }
  });
});
