// Which page the window shows, kept in the URL's hash ("#/payouts") so a reload stays put and the
// browser tests can open a page directly.

export const PAGES = [
  { id: "overview", title: "Overview" },
  { id: "earnings", title: "Earnings" },
  { id: "payouts", title: "Payouts" },
  { id: "hardware", title: "Hardware" },
  { id: "pools", title: "Pools" },
  { id: "settings", title: "Settings" },
] as const;

export type PageId = (typeof PAGES)[number]["id"];

export function pageFromHash(hash: string): PageId {
  const id = hash.replace(/^#\/?/, "");
  return PAGES.find((p) => p.id === id)?.id ?? "overview";
}

export class Router {
  current = $state<PageId>(pageFromHash(location.hash));

  constructor() {
    $effect(() => {
      const follow = () => (this.current = pageFromHash(location.hash));
      window.addEventListener("hashchange", follow);
      return () => window.removeEventListener("hashchange", follow);
    });
  }

  go(page: PageId): void {
    location.hash = `#/${page}`;
    this.current = page;
  }
}
