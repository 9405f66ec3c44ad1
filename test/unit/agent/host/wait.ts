/** Polls `condition` until it holds or the deadline passes. */
export async function waitFor<T>(condition: () => T | undefined | false | Promise<T | undefined | false>, what: string, deadlineMs = 10_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  while (true) {
    const v = await condition();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
