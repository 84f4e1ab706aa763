// Whether the system is in dark mode now, for what CSS cannot colour (the chart's canvas).

export class ColorScheme {
  dark = $state(false);

  /** Create while a component initialises; follows the system setting until that component goes. */
  constructor() {
    const query = window.matchMedia("(prefers-color-scheme: dark)");
    this.dark = query.matches;
    $effect(() => {
      const follow = () => (this.dark = query.matches);
      query.addEventListener("change", follow);
      return () => query.removeEventListener("change", follow);
    });
  }
}
