// The window with the mock backend behind Tauri's IPC: `mock.html`, and `mock.html?scenario=first-run`
// for a machine that has joined no pool yet.

import { installMockBackend, type Scenario } from "./backend";

const scenario: Scenario =
  new URLSearchParams(location.search).get("scenario") === "first-run" ? "first-run" : "default";
installMockBackend(scenario);

// The window itself, loaded only after the mock is in place so its first commands reach it.
await import("../main");
