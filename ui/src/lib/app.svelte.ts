import { ApiError, createApi, describeError } from './api';
import { consumeToken, splitTokenFragment, storeToken } from './auth';
import { debounce } from './debounce';
import { startEventStream, type EventStream, type StreamState } from './events';
import {
  dismissalKey,
  heldAfterKeys,
  holdAlert,
  loadDismissed,
  parseBudgetEvent,
  saveDismissed,
  shownAlerts,
  type HeldAlert,
} from './keys';
import { LOG_LIMIT, mergeLoaded, prependRecord } from './log';
import { newest } from './newest';
import type { ClientKeyView, RequestRecord, StatusView } from './types';

export interface Banner {
  id: number;
  message: string;
  /** Banners with a key replace each other, and go away when their cause is fixed. */
  key?: string;
}

/** Shared state of the dashboard: the token, live status, the request log, client keys and banners. */
class App {
  token = $state<string | null>(null);
  /** Set when there is no token or Keyway refused it; the token screen is shown. */
  needsToken = $state(false);
  authMessage = $state<string | null>(null);

  status = $state<StatusView | null>(null);
  statusError = $state<string | null>(null);
  log = $state.raw<RequestRecord[]>([]);
  logError = $state<string | null>(null);
  stream = $state<StreamState>('stopped');
  /** Bumped after each (coalesced) `state` event so screens can reload what they show. */
  stateVersion = $state(0);
  clientKey = $state<string | null>(null);
  /** `GET /api/client-keys`: every key, the default first. */
  clientKeys = $state.raw<ClientKeyView[]>([]);
  clientKeysLoaded = $state(false);
  clientKeysError = $state<string | null>(null);
  banners = $state<Banner[]>([]);
  /** Client keys over a budget, from `budget` events and the keys list. */
  budgetAlerts = $state.raw<HeldAlert[]>([]);
  /** Dismissed budget alerts (`dismissalKey`), kept for the tab. */
  dismissedBudgets = $state.raw<string[]>([]);
  /** Ticks every few seconds so relative times ("resets 14:05") stay right. */
  now = $state(new Date());

  readonly api = createApi({
    token: () => this.token,
    onUnauthorized: () => this.unauthorized(),
  });

  private events: EventStream | null = null;
  private loadingLog = false;
  private arrived: RequestRecord[] = [];
  private wasLive = false;
  private nextBanner = 1;
  private readonly statusLoad = newest();
  private readonly keysLoad = newest();
  private alertSeq = 0;
  private ticker: ReturnType<typeof setInterval> | undefined;

  private readonly stateChanged = debounce(() => {
    void this.refreshStatus();
    void this.loadClientKey();
    void this.loadClientKeys();
    this.stateVersion++;
  }, 250);

  /** Reads the token from the URL fragment or the session, then starts. */
  init(): void {
    this.token = consumeToken({ location: window.location, history: window.history, storage: sessionStorage });
    if (!this.token) {
      this.needsToken = true;
      return;
    }
    this.start();
  }

  /**
   * A dashboard link opened in a tab that already shows the dashboard only changes the
   * fragment; its token replaces the current one.
   */
  adoptFragmentToken(): void {
    const { token } = splitTokenFragment(window.location.hash);
    if (!token) return;
    const taken = consumeToken({ location: window.location, history: window.history, storage: sessionStorage });
    if (taken && (taken !== this.token || this.needsToken)) this.useToken(taken);
  }

  /** A token pasted on the token screen. */
  useToken(token: string): void {
    const t = token.trim();
    if (!t) return;
    storeToken(sessionStorage, t);
    this.token = t;
    this.needsToken = false;
    this.authMessage = null;
    this.start();
  }

  private start(): void {
    this.stop();
    this.wasLive = false;
    this.dismissedBudgets = loadDismissed(sessionStorage);
    void this.refreshStatus();
    void this.loadLog();
    void this.loadClientKey();
    void this.loadClientKeys();
    this.ticker = setInterval(() => this.tick(), 5_000);
    this.events = startEventStream({
      open: (signal) => this.api.events(signal),
      isFatal: (err) => err instanceof ApiError && err.status === 401,
      onState: (s) => {
        this.stream = s;
        if (s === 'retrying' && this.wasLive) this.notify('Lost the live connection to Keyway. Reconnecting…', 'stream');
        if (s !== 'live') return;
        this.clear('stream');
        if (this.wasLive) {
          void this.refreshStatus();
          void this.loadLog();
          void this.loadClientKeys();
          this.stateVersion++;
        }
        this.wasLive = true;
      },
      onEvent: (ev) => {
        if (ev.event === 'state') this.stateChanged();
        else if (ev.event === 'request') this.addRecord(ev.data);
        else if (ev.event === 'budget') this.addBudgetAlert(ev.data);
      },
    });
  }

  /** The traffic numbers of the last minute move without `state` events, so they are polled. */
  private tick(): void {
    this.now = new Date();
    if (document.visibilityState === 'visible') void this.refreshStatus();
  }

  private stop(): void {
    this.events?.stop();
    this.events = null;
    this.stateChanged.cancel();
    clearInterval(this.ticker);
  }

  private unauthorized(): void {
    if (this.needsToken) return;
    this.stop();
    this.needsToken = true;
    this.authMessage = this.token ? 'Keyway did not accept this token.' : null;
  }

  /** Only the newest of overlapping status loads is applied. */
  async refreshStatus(): Promise<void> {
    const current = this.statusLoad();
    try {
      const status = await this.api.status();
      if (!current()) return;
      this.status = status;
      this.statusError = null;
      this.clear('status');
    } catch (err) {
      if (!current()) return;
      this.statusError = describeError(err);
      const unreachable = err instanceof ApiError && err.status === 0 && this.stream !== 'live';
      if (!(err instanceof ApiError && err.status === 401) && !unreachable) this.notify(this.statusError, 'status');
    }
  }

  async loadLog(): Promise<void> {
    if (this.loadingLog) return;
    this.loadingLog = true;
    this.arrived = [];
    try {
      const loaded = await this.api.requests(LOG_LIMIT);
      this.log = mergeLoaded(loaded, this.arrived);
      this.logError = null;
    } catch (err) {
      this.logError = describeError(err);
    } finally {
      this.loadingLog = false;
      this.arrived = [];
    }
  }

  private addRecord(data: string): void {
    let r: RequestRecord;
    try {
      r = JSON.parse(data) as RequestRecord;
    } catch {
      return;
    }
    if (typeof r !== 'object' || r === null || typeof r.id !== 'number') return;
    if (this.loadingLog) this.arrived.push(r);
    this.log = prependRecord(this.log, r);
  }

  async loadClientKey(): Promise<void> {
    try {
      this.clientKey = (await this.api.clientKey()).key;
    } catch {
      this.clientKey = null;
    }
  }

  /** Only the newest of overlapping loads is applied. */
  async loadClientKeys(): Promise<void> {
    const current = this.keysLoad();
    const since = this.alertSeq;
    try {
      const keys = await this.api.clientKeys();
      if (!current()) return;
      this.clientKeys = keys;
      this.clientKeysError = null;
      this.budgetAlerts = heldAfterKeys(this.budgetAlerts, keys, since, new Date(), ++this.alertSeq);
    } catch (err) {
      if (!current()) return;
      this.clientKeysError = describeError(err);
    } finally {
      if (current()) this.clientKeysLoaded = true;
    }
  }

  private addBudgetAlert(data: string): void {
    const alert = parseBudgetEvent(data);
    if (!alert) return;
    this.budgetAlerts = holdAlert(this.budgetAlerts, alert, new Date(), ++this.alertSeq);
    void this.loadClientKeys();
  }

  /** Budget alerts of the current day or month that were not dismissed in this tab. */
  get shownBudgetAlerts(): HeldAlert[] {
    return shownAlerts(this.budgetAlerts, this.dismissedBudgets, this.now);
  }

  dismissBudget(h: HeldAlert): void {
    const key = dismissalKey(h);
    if (this.dismissedBudgets.includes(key)) return;
    this.dismissedBudgets = [...this.dismissedBudgets, key];
    saveDismissed(sessionStorage, this.dismissedBudgets);
  }

  notify(message: string, key?: string): void {
    const rest = key ? this.banners.filter((b) => b.key !== key) : this.banners;
    this.banners = [...rest, { id: this.nextBanner++, message, key }];
  }

  clear(key: string): void {
    if (this.banners.some((b) => b.key === key)) this.banners = this.banners.filter((b) => b.key !== key);
  }

  dismiss(id: number): void {
    this.banners = this.banners.filter((b) => b.id !== id);
  }
}

export const app = new App();
