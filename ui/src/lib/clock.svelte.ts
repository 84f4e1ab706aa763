// The local time, for text like "for 5 min" and "paused until 15:30". It ticks on its own; it never
// asks the app for anything.

export class Clock {
  now = $state(Date.now());

  /** Create while a component initialises; stops ticking when that component goes. */
  constructor(everyMs = 15_000) {
    $effect(() => {
      const timer = setInterval(() => (this.now = Date.now()), everyMs);
      return () => clearInterval(timer);
    });
  }
}
