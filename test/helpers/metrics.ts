/** Reading plumb's own metrics in tests. */

/** Current value of a self-metric sample, 0 when it has not been touched. */
export async function metricValue(registry: { getSingleMetric(name: string): unknown }, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name) as { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> } | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return hit?.value ?? 0;
}
