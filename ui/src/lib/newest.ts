/**
 * Numbers overlapping loads of one thing, so that only the newest one's answer is applied: a
 * load started before a change (a `state` event's refresh) can finish after the load started by
 * the change itself (a save's refresh), and must not put the old view back.
 */
export function newest(): () => () => boolean {
  let started = 0;
  return () => {
    const mine = ++started;
    return () => mine === started;
  };
}
