/**
 * Orders the answers of overlapping loads of one thing by when the loads started: an answer is
 * applied unless one from a later load has been applied already. A load started before a change
 * (a `state` event's refresh) can finish after the load the change itself started (a save's
 * refresh), and must not put the old view back; a later load's answer is applied as soon as it
 * comes, whatever is still on the way.
 *
 * `newest()` returns `start`; `start()` is called as a load begins and returns `current`, which
 * says (as often as asked) whether that load's answer may be applied now, and records it as
 * applied when it may.
 */
export function newest(): () => () => boolean {
  let started = 0;
  let applied = 0;
  return () => {
    const mine = ++started;
    return () => {
      if (mine < applied) return false;
      applied = mine;
      return true;
    };
  };
}
