// One colour per pool, the same in the chart and its legend; chosen to read on light and dark.

const POOL_COLORS = ["#4f7cff", "#1fa97a", "#f0a13a", "#b665e0", "#e5566a", "#25aec4", "#8f9a3a"];

export function poolColor(index: number): string {
  return POOL_COLORS[index % POOL_COLORS.length]!;
}
