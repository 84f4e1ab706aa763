// A value a page shows: asked for once when the page opens, then kept current by the app's events.
// Never polled. Create it while a component initialises; it unsubscribes when that component goes.

import { untrack } from "svelte";
import { errorMessage, type Unsubscribe } from "./ipc";

export class Live<T> {
  /** Undefined until the first answer or event arrives. */
  current = $state<T | undefined>(undefined);
  /** Why the last load failed; cleared by the next value. */
  error = $state<string | null>(null);

  // Bumped by every load and every pushed value, so an answer that arrives after a newer value
  // (a slow get_* overtaken by an event) is dropped instead of showing older data.
  #version = 0;
  readonly #load: () => Promise<T>;

  /**
   * @param load asks the app for the value (a get_* command)
   * @param follow subscribes to the events that change it; gets this object to `set` or `reload` it
   */
  constructor(load: () => Promise<T>, follow?: (live: Live<T>) => Unsubscribe) {
    this.#load = load;
    $effect(() =>
      untrack(() => {
        this.reload();
        return follow?.(this);
      }),
    );
  }

  /** Shows a value the app pushed or a command returned. */
  set(value: T): void {
    this.#version += 1;
    this.current = value;
    this.error = null;
  }

  /** Asks the app again (the range changed, or an event said the data did). */
  reload(): void {
    const version = ++this.#version;
    this.#load().then(
      (value) => {
        if (version !== this.#version) return;
        this.current = value;
        this.error = null;
      },
      (error: unknown) => {
        if (version === this.#version) this.error = errorMessage(error);
      },
    );
  }
}

/** Several subscriptions as one. */
export function allOf(...unsubscribes: Unsubscribe[]): Unsubscribe {
  return () => unsubscribes.forEach((stop) => stop());
}
