import { untrack } from 'svelte';
import { describeError } from './api';
import { app } from './app.svelte';
import { newest } from './newest';

/** What a screen fetched from the management API, with the state of fetching it. */
export interface Resource<T> {
  /** The last successful result, `initial` until there is one. Settable, so a screen can apply a mutation's answer. */
  data: T;
  /** True once the first load has finished, whether it succeeded or not. */
  readonly loaded: boolean;
  /** Why the last load failed, or null when it succeeded; `data` keeps the last good result. */
  readonly error: string | null;
  /** Fetches again (after a change the screen made itself). Never rejects. */
  load(): Promise<void>;
}

/**
 * Loads what a screen shows, and loads it again after every `state` event (`app.stateVersion`), so
 * the screens share one way of loading, failing and refreshing instead of each repeating it.
 *
 * Call it while the component initialises (top level of its `<script>`): it creates an `$effect`,
 * which only exists there and ends with the component.
 */
export function resource<T>(fetcher: () => Promise<T>, initial: T): Resource<T> {
  let data = $state<T>(initial);
  let loaded = $state(false);
  let error = $state<string | null>(null);
  const start = newest();

  /** Only the newest of overlapping loads is applied. */
  async function load(): Promise<void> {
    const current = start();
    try {
      const result = await fetcher();
      if (!current()) return;
      data = result;
      error = null;
    } catch (err) {
      if (!current()) return;
      error = describeError(err);
    } finally {
      if (current()) loaded = true;
    }
  }

  $effect(() => {
    void app.stateVersion;
    untrack(() => void load());
  });

  return {
    get data() {
      return data;
    },
    set data(value: T) {
      data = value;
    },
    get loaded() {
      return loaded;
    },
    get error() {
      return error;
    },
    load,
  };
}
