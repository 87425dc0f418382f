/**
 * Wait until `condition` returns a value other than undefined/false, polling every `intervalMs`, for at
 * most `timeoutMs` of real time; then fail naming what was awaited. Tests wait on a condition they can
 * see (the sandbox's state, an event seen), never on a fixed sleep a slow machine could outrun.
 */
async function waitFor<T>(
  what: string,
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 20_000, intervalMs = 10 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export { waitFor };
