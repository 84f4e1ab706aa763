import { afterEach, describe, expect, it } from "vitest";
import { flushSync } from "svelte";
import { Live } from "./live.svelte";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A load whose answers the test releases one by one. */
function deferredLoads<T>() {
  const pending: ((value: T) => void)[] = [];
  const load = () => new Promise<T>((resolve) => pending.push(resolve));
  return { load, pending };
}

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

/** Creates a Live inside an effect root, as a component would. */
function create<T>(load: () => Promise<T>, follow?: (live: Live<T>) => () => void): Live<T> {
  let live!: Live<T>;
  cleanup = $effect.root(() => {
    live = new Live(load, follow);
  });
  flushSync();
  return live;
}

describe("Live", () => {
  it("loads once and shows the answer", async () => {
    let loads = 0;
    const live = create(async () => ++loads);
    await settle();
    expect(live.current).toBe(1);
    expect(loads).toBe(1);
  });

  it("shows a failed load's reason, cleared by the next value", async () => {
    const live = create<number>(() => Promise.reject("cannot reach the app"));
    await settle();
    expect(live.error).toBe("cannot reach the app");
    live.set(3);
    expect(live.error).toBeNull();
    expect(live.current).toBe(3);
  });

  it("drops an answer that arrives after a pushed value", async () => {
    const { load, pending } = deferredLoads<string>();
    const live = create(load);
    live.set("from an event");
    pending[0]!("stale answer");
    await settle();
    expect(live.current).toBe("from an event");
  });

  it("keeps only the newest of overlapping reloads", async () => {
    const { load, pending } = deferredLoads<string>();
    const live = create(load);
    live.reload();
    pending[1]!("newer");
    pending[0]!("older");
    await settle();
    expect(live.current).toBe("newer");
  });

  it("follows events until its owner goes", () => {
    let subscribed = false;
    create(
      () => new Promise(() => {}),
      () => {
        subscribed = true;
        return () => (subscribed = false);
      },
    );
    expect(subscribed).toBe(true);
    cleanup?.();
    cleanup = undefined;
    expect(subscribed).toBe(false);
  });
});
