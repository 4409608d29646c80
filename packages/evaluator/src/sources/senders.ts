/**
 * Who keeps having their OTLP batches refused. A refused batch is telemetry
 * lost: without this, an app exporting in a way the receiver cannot read would
 * look like an app with nothing to report, and its faults would never page.
 *
 * A sender is the `service.name` of the refused batch's resources when the body
 * could be read that far, otherwise the peer address (`unknown sender
 * 127.0.0.1`). After `after` refused batches in a row it gets a failing
 * `rejected` signal (and again with every further refusal: a heartbeat); the
 * next accepted batch of that service, or from that address, clears it. The
 * names are taken from an untrusted body: bounded, and used only as labels.
 */
import { ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_RESPONSE_STATUS_CODE, REJECT_REASON } from '@vigil/sdk/semconv';
import type { Signal } from '../signals/types.js';

export type RejectReason = (typeof REJECT_REASON)[keyof typeof REJECT_REASON];

/** The subject of a `rejected` signal. */
export const REJECTED_SUBJECT = 'telemetry';
/** Senders tracked at once; past that, new ones share one entry (`unknown sender`). */
export const MAX_SENDERS = 1000;
/** Services taken from one refused batch. */
export const MAX_SERVICES_PER_BATCH = 10;
const MAX_NAME_CHARS = 128;
const OVERFLOW_KEY = 'overflow';

interface SenderState {
  service: string;
  inRow: number;
  failing: boolean;
}

/** A name from a body, fit for a label: no control characters, at most 128 characters. */
export function boundedName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, MAX_NAME_CHARS);
}

export class SenderTracker {
  private readonly senders = new Map<string, SenderState>();

  constructor(
    private readonly after: number,
    private readonly emit: (signals: Signal[], at: number) => void,
  ) {}

  /** A batch was refused: counts against its services, or its peer when none could be read. */
  rejected(services: string[], peer: string, why: { status: number; reason: RejectReason }, at: number): void {
    const out: Signal[] = [];
    for (const { key, service } of this.keys(services, peer, true)) {
      const st = this.entry(key, service);
      st.inRow++;
      if (st.inRow < this.after) continue;
      st.failing = true;
      out.push(this.signal(st.service, true, at, { [ATTR_HTTP_RESPONSE_STATUS_CODE]: String(why.status), [ATTR_ERROR_TYPE]: why.reason, [ATTR_CLIENT_ADDRESS]: peer }));
    }
    if (out.length) this.emit(out, at);
  }

  /** A batch was accepted: its services and its peer are heard again. */
  accepted(services: string[], peer: string, at: number): void {
    if (this.senders.size === 0) return;
    const out: Signal[] = [];
    for (const { key } of this.keys(services, peer, false)) {
      const st = this.senders.get(key);
      if (!st) continue;
      this.senders.delete(key);
      if (st.failing) out.push(this.signal(st.service, false, at, { [ATTR_CLIENT_ADDRESS]: peer }));
    }
    if (out.length) this.emit(out, at);
  }

  /** Failing `rejected` signals kept across a restart (the state file): the next accepted batch clears them. */
  restore(signals: Signal[]): void {
    for (const s of signals) {
      if (s.kind !== 'rejected' || !s.failing) continue;
      const peer = peerOf(s.service);
      this.entry(peer !== undefined ? `peer:${peer}` : `service:${s.service}`, s.service).failing = true;
    }
  }

  /** The senders tracked now (for tests and the status API). */
  size(): number {
    return this.senders.size;
  }

  private keys(services: string[], peer: string, refused: boolean): Array<{ key: string; service: string }> {
    const named = [...new Set(services.map(boundedName).filter(Boolean))].slice(0, MAX_SERVICES_PER_BATCH).map((s) => ({ key: `service:${s}`, service: s }));
    const byPeer = { key: `peer:${peer}`, service: `${UNKNOWN_SENDER} ${peer}` };
    // A refused batch counts against the services it names; an accepted one also clears its address.
    return refused ? (named.length ? named : [byPeer]) : [...named, byPeer];
  }

  private entry(key: string, service: string): SenderState {
    let st = this.senders.get(key);
    if (st) return st;
    if (this.senders.size >= MAX_SENDERS) {
      // Make room with the oldest sender that is not failing; else everyone new shares one entry.
      const idle = [...this.senders].find(([k, v]) => !v.failing && k !== OVERFLOW_KEY);
      if (idle) this.senders.delete(idle[0]);
      else {
        let overflow = this.senders.get(OVERFLOW_KEY);
        if (!overflow) this.senders.set(OVERFLOW_KEY, (overflow = { service: UNKNOWN_SENDER, inRow: 0, failing: false }));
        return overflow;
      }
    }
    st = { service, inRow: 0, failing: false };
    this.senders.set(key, st);
    return st;
  }

  private signal(service: string, failing: boolean, at: number, labels: Record<string, string>): Signal {
    return { kind: 'rejected', service, instance: '', component: '', subject: REJECTED_SUBJECT, failing, labels, observedAt: at };
  }
}

/** The service name of a sender known only by its address. */
export const UNKNOWN_SENDER = 'unknown sender';

function peerOf(service: string): string | undefined {
  return service.startsWith(`${UNKNOWN_SENDER} `) ? service.slice(UNKNOWN_SENDER.length + 1) : undefined;
}
