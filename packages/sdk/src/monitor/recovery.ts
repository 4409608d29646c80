/**
 * Recovery: actions a component registers (reconnect a pool, import a router
 * again) run when it starts failing at run time, with bounded attempts and
 * exponential back-off. The time from first failure to passing again is the
 * component's MTTR for that incident.
 */
import type { Logger } from 'pino';

export type RecoveryAction = (ctx: { component: string; attempt: number; signal: AbortSignal }) => Promise<unknown> | unknown;

export interface RecoveryPolicy {
  attempts: number;
  backoffMs: number;
}

export interface Incident {
  component: string;
  startedAt: number;
  attempts: number;
  recoveredAt?: number;
  /** Set when every attempt ran and the component still fails. */
  gaveUp?: boolean;
}

export interface RecoveryEvents {
  attempt(component: string, attempt: number, ok: boolean, error?: string): void;
  recovered(component: string, mttrMs: number, attempts: number): void;
}

export class Recovery {
  private readonly actions = new Map<string, Array<{ action: RecoveryAction; policy: RecoveryPolicy }>>();
  private readonly incidents = new Map<string, Incident>();
  private readonly history: Incident[] = [];
  private readonly aborts = new Set<AbortController>();

  constructor(
    private readonly logger: Logger,
    private readonly events: RecoveryEvents,
    /** Re-runs the component's failing checks; true when all pass now. */
    private readonly confirm: (component: string) => Promise<boolean>,
    private readonly now: () => number = Date.now,
  ) {}

  register(component: string, action: RecoveryAction, policy: RecoveryPolicy): void {
    const list = this.actions.get(component) ?? [];
    list.push({ action, policy });
    this.actions.set(component, list);
  }

  has(component: string): boolean {
    return (this.actions.get(component)?.length ?? 0) > 0;
  }

  /** The incidents so far (the latest 50), open ones included. */
  get log(): Incident[] {
    return [...this.history.slice(-50), ...this.incidents.values()];
  }

  /** The component started failing: open an incident and try to recover (in the background). */
  failed(component: string): void {
    if (this.incidents.has(component)) return;
    const incident: Incident = { component, startedAt: this.now(), attempts: 0 };
    this.incidents.set(component, incident);
    if (this.has(component)) void this.attempt(incident);
  }

  /** The component passes again (whoever fixed it): close the incident, record the MTTR. */
  passed(component: string): void {
    const incident = this.incidents.get(component);
    if (!incident) return;
    this.incidents.delete(component);
    incident.recoveredAt = this.now();
    this.history.push(incident);
    if (this.history.length > 200) this.history.splice(0, this.history.length - 200);
    this.events.recovered(component, incident.recoveredAt - incident.startedAt, incident.attempts);
  }

  stop(): void {
    for (const ac of this.aborts) ac.abort();
  }

  private async attempt(incident: Incident): Promise<void> {
    const list = this.actions.get(incident.component) ?? [];
    const policy = list.reduce((p, a) => ({ attempts: Math.max(p.attempts, a.policy.attempts), backoffMs: Math.max(p.backoffMs, a.policy.backoffMs) }), { attempts: 1, backoffMs: 0 });
    const ac = new AbortController();
    this.aborts.add(ac);
    try {
      for (let attempt = 1; attempt <= policy.attempts && !ac.signal.aborted; attempt++) {
        if (this.incidents.get(incident.component) !== incident) return; // recovered meanwhile
        incident.attempts = attempt;
        let error: string | undefined;
        for (const { action } of list) {
          try {
            await action({ component: incident.component, attempt, signal: ac.signal });
          } catch (err) {
            error = err instanceof Error ? err.message : String(err);
          }
        }
        const ok = error === undefined && (await this.confirm(incident.component));
        this.events.attempt(incident.component, attempt, ok, error);
        this.logger.warn({ component: incident.component, attempt, ok, error }, `recovery attempt ${attempt} for ${incident.component}: ${ok ? 'recovered' : 'still failing'}`);
        if (ok) return;
        await new Promise<void>((r) => setTimeout(r, policy.backoffMs * 2 ** (attempt - 1)).unref());
      }
      if (this.incidents.get(incident.component) === incident) incident.gaveUp = true;
    } finally {
      this.aborts.delete(ac);
    }
  }
}
