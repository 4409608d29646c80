import { expect } from 'chai';
import { SignalStore } from '../src/state/store.js';
import type { Signal } from '../src/signals/types.js';

const S = 1000;
const opts = { staleAfter: 30 * S, silentAfter: 60 * S, retain: 3600 * S };

/** A signal; `observedAt` defaults to the batch time given to `at`. */
function sig(p: Partial<Signal> & { instance: string }): Omit<Signal, 'observedAt'> & { observedAt?: number } {
  return { kind: 'import', service: 'api', component: 'admin', subject: 'admin', failing: false, labels: {}, environment: 'prod', ...p };
}

/** A `vigil.instance.running` signal: `stopped` when it exported 0. */
function lifecycle(instance: string, stopped: boolean): ReturnType<typeof sig> {
  return sig({ instance, kind: 'lifecycle', component: '', subject: 'running', failing: stopped });
}

type Step = { at: number; signals: Array<ReturnType<typeof sig>> };
type Summary = string; // `${service} ${kind} ${subject} @${instance}`

const summarize = (signals: Signal[]): Summary[] => signals.map((s) => `${s.service} ${s.kind} ${s.subject} @${s.instance}`).sort();

function storeAfter(steps: Step[]): SignalStore {
  const store = new SignalStore(opts, () => 0);
  for (const step of steps) store.ingest(step.signals.map((s) => ({ ...s, observedAt: s.observedAt ?? step.at })), step.at);
  return store;
}

const cases: Array<{ name: string; steps: Step[]; now: number; active: Summary[] }> = [
  { name: 'nothing ingested', steps: [], now: 0, active: [] },
  { name: 'one live healthy instance', steps: [{ at: 0, signals: [sig({ instance: 'a' })] }], now: 10 * S, active: [] },
  {
    name: 'one live failing instance',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true })] }],
    now: 10 * S,
    active: ['api import admin @a'],
  },
  {
    name: 'any live failing instance makes the key fail',
    steps: [{ at: 0, signals: [sig({ instance: 'a' }), sig({ instance: 'b', failing: true }), sig({ instance: 'c' })] }],
    now: 10 * S,
    active: ['api import admin @b'],
  },
  {
    name: 'one signal per key even when several live instances fail',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true }), sig({ instance: 'b', failing: true, observedAt: 5 })] }],
    now: 10 * S,
    active: ['api import admin @b'],
  },
  {
    name: 'a stale failing instance does not count while a live one reports the key healthy',
    steps: [
      { at: 0, signals: [sig({ instance: 'old', failing: true })] },
      { at: 40 * S, signals: [sig({ instance: 'new' })] },
    ],
    now: 45 * S,
    active: [],
  },
  {
    name: 'a dead instance keeps its evidence while no live instance has the key',
    steps: [
      { at: 0, signals: [sig({ instance: 'refused', kind: 'startup', component: '', subject: 'startup', failing: true })] },
      { at: 40 * S, signals: [sig({ instance: 'other' })] }, // live, but says nothing about startup
    ],
    now: 45 * S,
    active: ['api startup startup @refused'],
  },
  {
    name: 'the evidence goes once a new instance reports the key healthy',
    steps: [
      { at: 0, signals: [sig({ instance: 'refused', kind: 'startup', component: '', subject: 'startup', failing: true })] },
      { at: 40 * S, signals: [sig({ instance: 'next', kind: 'startup', component: '', subject: 'startup', failing: false })] },
    ],
    now: 45 * S,
    active: [],
  },
  {
    name: 'once every instance is stale, the most recently seen one decides (healthy here)',
    steps: [
      { at: 0, signals: [sig({ instance: 'refused', kind: 'startup', component: '', subject: 'startup', failing: true })] },
      { at: 10 * S, signals: [sig({ instance: 'next', kind: 'startup', component: '', subject: 'startup' })] },
    ],
    now: 50 * S, // both stale (not silent yet): the most recently seen instance's value (healthy) stands
    active: [],
  },
  {
    name: 'among stale instances the most recently seen one decides',
    steps: [
      { at: 0, signals: [sig({ instance: 'first' })] },
      { at: 10 * S, signals: [sig({ instance: 'second', failing: true })] },
    ],
    now: 50 * S,
    active: ['api import admin @second'],
  },
  {
    name: 'an instance recovers: its later value replaces the failing one',
    steps: [
      { at: 0, signals: [sig({ instance: 'a', failing: true })] },
      { at: 5 * S, signals: [sig({ instance: 'a', failing: false })] },
    ],
    now: 6 * S,
    active: [],
  },
  {
    name: 'an older observation arriving late does not replace a newer one',
    steps: [
      { at: 5 * S, signals: [sig({ instance: 'a', failing: false, observedAt: 5 * S })] },
      { at: 6 * S, signals: [sig({ instance: 'a', failing: true, observedAt: 1 * S })] },
    ],
    now: 7 * S,
    active: [],
  },
  {
    name: 'keys differ by kind, component and subject',
    steps: [
      {
        at: 0,
        signals: [
          sig({ instance: 'a', kind: 'probe', component: 'auth', subject: 'POST /login', failing: true }),
          sig({ instance: 'a', kind: 'route', component: 'auth', subject: 'POST /login', failing: false }),
          sig({ instance: 'a', kind: 'probe', component: 'users', subject: 'POST /login', failing: false }),
        ],
      },
    ],
    now: 1 * S,
    active: ['api probe POST /login @a'],
  },
  {
    name: 'services are separate',
    steps: [{ at: 0, signals: [sig({ instance: 'a', service: 'one', failing: true }), sig({ instance: 'a', service: 'two' })] }],
    now: 1 * S,
    active: ['one import admin @a'],
  },
  {
    name: 'silent after silentAfter: a killed instance\'s failing evidence becomes the one silence signal',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true }), sig({ instance: 'b' })] }],
    now: 61 * S,
    active: ['api silent telemetry @'],
  },
  {
    name: 'a stale (not yet gone) instance keeps its failing evidence until silentAfter',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true })] }],
    now: 45 * S,
    active: ['api import admin @a'],
  },
  {
    name: 'a gone instance that refused to start keeps all its evidence, beside the silence signal',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true }), sig({ instance: 'a', kind: 'startup', component: '', subject: 'startup', failing: true })] }],
    now: 61 * S,
    active: ['api import admin @a', 'api startup startup @a', 'api silent telemetry @'],
  },
  {
    name: 'a killed instance beside a live one: its evidence is dropped at silentAfter, and the service is not silent',
    steps: [
      { at: 0, signals: [sig({ instance: 'killed', failing: true, subject: 'only-on-killed' })] },
      { at: 50 * S, signals: [sig({ instance: 'live' })] },
    ],
    now: 61 * S,
    active: [],
  },
  {
    name: 'a clean stop: the stopped instance\'s failing evidence ends at once, and no silence after silentAfter',
    steps: [
      { at: 0, signals: [sig({ instance: 'a', failing: true })] },
      { at: 5 * S, signals: [lifecycle('a', true)] },
    ],
    now: 600 * S,
    active: [],
  },
  {
    name: 'a stopped instance is not live: an older killed one is not hidden by it, but the newest stopped cleanly, so no silence',
    steps: [
      { at: 0, signals: [sig({ instance: 'killed', failing: true, subject: 'x' })] },
      { at: 10 * S, signals: [sig({ instance: 'b' }), lifecycle('b', true)] },
    ],
    now: 20 * S,
    active: ['api import x @killed'],
  },
  {
    name: 'the killed instance is newer than the stopped one: silent',
    steps: [
      { at: 0, signals: [sig({ instance: 'b' }), lifecycle('b', true)] },
      { at: 10 * S, signals: [sig({ instance: 'killed' }), lifecycle('killed', false)] },
    ],
    now: 71 * S,
    active: ['api silent telemetry @'],
  },
  {
    name: 'a late "running" batch never undoes a newer "stopped"',
    steps: [
      { at: 5 * S, signals: [sig({ instance: 'a', failing: true }), lifecycle('a', true)] },
      { at: 6 * S, signals: [{ ...lifecycle('a', false), observedAt: 4 * S }] },
    ],
    now: 10 * S,
    active: [],
  },
  {
    name: 'an instance id that runs again after "stopped" is live again',
    steps: [
      { at: 5 * S, signals: [lifecycle('a', true)] },
      { at: 6 * S, signals: [sig({ instance: 'a', failing: true }), lifecycle('a', false)] },
    ],
    now: 10 * S,
    active: ['api import admin @a'],
  },
  { name: 'not silent at exactly silentAfter', steps: [{ at: 0, signals: [sig({ instance: 'a' })] }], now: 60 * S, active: [] },
  {
    name: 'one instance still reporting keeps the service from being silent',
    steps: [
      { at: 0, signals: [sig({ instance: 'a' })] },
      { at: 50 * S, signals: [sig({ instance: 'b' })] },
    ],
    now: 70 * S,
    active: [],
  },
  {
    name: 'retain drops an instance and its signals',
    steps: [
      { at: 0, signals: [sig({ instance: 'dead', kind: 'startup', component: '', subject: 'startup', failing: true })] },
      { at: 3600 * S, signals: [sig({ instance: 'live' })] },
    ],
    now: 3601 * S,
    active: [],
  },
  {
    name: 'retain drops a whole silent service (and its silent signal)',
    steps: [{ at: 0, signals: [sig({ instance: 'a', failing: true })] }],
    now: 3601 * S,
    active: [],
  },
  {
    name: 'a silent signal given as input is ignored',
    steps: [{ at: 0, signals: [sig({ instance: 'a', kind: 'silent', component: '', subject: 'telemetry', failing: true })] }],
    now: 1 * S,
    active: [],
  },
];

describe('state/store: SignalStore', () => {
  for (const c of cases) {
    it(c.name, () => {
      const store = storeAfter(c.steps);
      expect(summarize(store.active(c.now))).to.deep.equal([...c.active].sort());
    });
  }

  it('the silent signal: component "", subject telemetry, failing, with the service environment and last-seen time; failing since last seen + silentAfter', () => {
    const store = storeAfter([{ at: 5 * S, signals: [sig({ instance: 'a', environment: 'staging' })] }]);
    expect(store.active(70 * S)).to.deep.equal([
      { kind: 'silent', service: 'api', instance: '', environment: 'staging', component: '', subject: 'telemetry', failing: true, labels: {}, observedAt: 5 * S, failingSince: 5 * S + opts.silentAfter },
    ]);
  });

  it('uses the injected clock when no time is given', () => {
    let t = 0;
    const store = new SignalStore(opts, () => t);
    store.ingest([{ ...sig({ instance: 'a', failing: true }), observedAt: 0 }], 0);
    expect(store.active()).to.have.length(1);
    t = 45 * S;
    expect(summarize(store.active())).to.deep.equal(['api import admin @a']);
    t = 61 * S;
    expect(summarize(store.active())).to.deep.equal(['api silent telemetry @']);
    t = 3601 * S;
    expect(store.active()).to.deep.equal([]);
    expect(store.services()).to.deep.equal([]);
  });

  it('lastSeen never goes back when batches arrive out of order', () => {
    const store = new SignalStore(opts, () => 0);
    store.ingest([{ ...sig({ instance: 'a' }), observedAt: 0 }], 50 * S);
    store.ingest([{ ...sig({ instance: 'a' }), observedAt: 0 }], 10 * S);
    expect(store.services(60 * S)[0]!.instances[0]!.lastSeen).to.equal(50 * S);
  });

  it('services(): environment, instances with liveness, silence, and every current signal by component', () => {
    const store = storeAfter([
      {
        at: 0,
        signals: [
          sig({ instance: 'old', kind: 'startup', component: '', subject: 'startup', failing: true }),
          sig({ instance: 'old', kind: 'import', component: 'admin', subject: 'admin', failing: true }),
        ],
      },
      {
        at: 40 * S,
        signals: [
          sig({ instance: 'new', kind: 'import', component: 'admin', subject: 'admin', failing: false }),
          sig({ instance: 'new', kind: 'probe', component: 'auth', subject: 'POST /login', failing: true }),
        ],
      },
      { at: 41 * S, signals: [sig({ instance: 'x', service: 'other', environment: 'staging' })] },
    ]);
    const services = store.services(45 * S);
    expect(services.map((s) => s.service)).to.deep.equal(['api', 'other']);
    const api = services[0]!;
    expect(api.environment).to.equal('prod');
    expect(api.lastSeen).to.equal(40 * S);
    expect(api.silent).to.equal(false);
    expect(api.instances).to.deep.equal([
      { instance: 'new', environment: 'prod', lastSeen: 40 * S, live: true },
      { instance: 'old', environment: 'prod', lastSeen: 0, live: false },
    ]);
    const brief = (list: Signal[] | undefined) => (list ?? []).map((s) => `${s.kind} ${s.subject} ${s.failing ? 'failing' : 'ok'} @${s.instance}`);
    expect(Object.keys(api.components).sort()).to.deep.equal(['', 'admin', 'auth']);
    expect(brief(api.components[''])).to.deep.equal(['startup startup failing @old']);
    expect(brief(api.components.admin)).to.deep.equal(['import admin ok @new']);
    expect(brief(api.components.auth)).to.deep.equal(['probe POST /login failing @new']);
    expect(services[1]!.environment).to.equal('staging');

    const later = store.services(101 * S);
    expect(later.find((s) => s.service === 'api')!.silent).to.equal(true);
    expect(later.find((s) => s.service === 'api')!.instances.every((i) => !i.live)).to.equal(true);
  });
});

describe('signal store: unknown is unknown', () => {
  it('a check not run yet (unknown) neither fails nor stands for a pass another instance reports', () => {
    const store = storeAfter([
      { at: 0, signals: [sig({ instance: 'a', kind: 'probe', subject: 'GET /x', unknown: true }), sig({ instance: 'b', kind: 'probe', subject: 'GET /x' })] },
      { at: 2 * S, signals: [sig({ instance: 'a', kind: 'probe', subject: 'GET /x', unknown: true })] },
    ]);
    expect(store.active(3 * S)).to.deep.equal([]);
    const probe = store.services(3 * S)[0]!.components.admin!.find((s) => s.kind === 'probe')!;
    expect(probe.instance).to.equal('b'); // the older known pass wins over the newer unknown
    const alone = storeAfter([{ at: 0, signals: [sig({ instance: 'a', kind: 'probe', subject: 'GET /x', unknown: true })] }]);
    expect(alone.services(S)[0]!.components.admin![0]).to.include({ unknown: true, failing: false });
  });

  describe('lifecycle: alwaysRunning', () => {
    const always = { ...opts, alwaysRunning: (service: string) => service === 'api' };
    const make = (t: { now: number }) => new SignalStore(always, () => t.now);

    it('the last instance stopped cleanly → one no_instance signal; none for a service that need not run; gone when an instance runs again', () => {
      const t = { now: 0 };
      const store = make(t);
      store.ingest([{ ...sig({ instance: 'a' }), observedAt: 0 }, { ...lifecycle('a', false), observedAt: 0 }], 0);
      store.ingest([{ ...sig({ instance: 'x', service: 'batch' }), observedAt: 0 }, { ...lifecycle('x', true), service: 'batch', observedAt: 1 * S }], 1 * S);
      expect(store.active(2 * S)).to.deep.equal([]);
      store.ingest([{ ...lifecycle('a', true), observedAt: 3 * S }], 3 * S);
      expect(store.active(4 * S)).to.deep.equal([
        { kind: 'no_instance', service: 'api', instance: '', environment: 'prod', component: '', subject: 'running instance', failing: true, labels: {}, observedAt: 3 * S },
      ]);
      const status = store.services(4 * S).find((x) => x.service === 'api')!;
      expect(status).to.deep.include({ silent: false, noInstance: true });
      expect(status.instances).to.deep.equal([{ instance: 'a', environment: 'prod', lastSeen: 3 * S, live: false, stopped: true }]);
      // Never silent, and kept past retain: its absence pages until an instance comes back.
      expect(summarize(store.active(7200 * S))).to.deep.equal(['api no_instance running instance @']);
      store.ingest([{ ...sig({ instance: 'b' }), observedAt: 7200 * S }, { ...lifecycle('b', false), observedAt: 7200 * S }], 7200 * S);
      expect(store.active(7201 * S)).to.deep.equal([]);
    });

    it('one stopped, another still live → no no_instance signal', () => {
      const t = { now: 0 };
      const store = make(t);
      store.ingest([{ ...lifecycle('a', false), observedAt: 0 }, { ...lifecycle('b', false), observedAt: 0 }], 0);
      store.ingest([{ ...lifecycle('a', true), observedAt: 1 * S }], 1 * S);
      expect(store.active(2 * S)).to.deep.equal([]);
    });

    it('the lifecycle survives a snapshot and restore', () => {
      const store = make({ now: 0 });
      store.ingest([{ ...sig({ instance: 'a', failing: true }), observedAt: 0 }, { ...lifecycle('a', true), observedAt: 1 * S }], 1 * S);
      const again = make({ now: 0 });
      again.restore(JSON.parse(JSON.stringify(store.snapshot())));
      expect(summarize(again.active(2 * S))).to.deep.equal(['api no_instance running instance @']);
    });
  });
});
