import { expect } from 'chai';
import express from 'express';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Manifest } from '../src/manifest/schema.js';
import { hasRoute } from '../src/startup/inventory.js';
import { importRouters, mountLoaded } from '../src/startup/routers.js';
import { errorMessage } from '../src/util/modules.js';

const base = new URL('./fixtures/', import.meta.url);
const GOOD_ROUTER: string = new URL('./routers/good.mjs', base).href;

function manifestWith(routers: Array<Record<string, unknown>>) {
  return Manifest.parse({ service: 't', components: { api: { policy: 'degrade', routers } } });
}

describe('isolated router imports', () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
  afterEach(() => exporter.reset());

  // One row per module: its outcome, the error type, and what the message must say.
  const table: Array<[string, Record<string, unknown>, string, string | undefined, RegExp | undefined]> = [
    ['a named "router" export', { module: './routers/good.mjs', mount: '/api' }, 'success', undefined, undefined],
    ['a default export', { module: './routers/default-export.mjs' }, 'success', undefined, undefined],
    ['a CommonJS module', { module: './routers/commonjs.cjs', mount: '/old' }, 'success', undefined, undefined],
    ['a module whose import is missing', { module: './routers/throws.mjs' }, 'failed', 'ERR_MODULE_NOT_FOUND', /missing-schema\.mjs/],
    ['a module that throws while loading', { module: './routers/type-error.mjs' }, 'failed', 'TypeError', /rateLimit/],
    ['a file that does not exist', { module: './routers/nope.mjs' }, 'failed', 'ERR_MODULE_NOT_FOUND', /nope\.mjs/],
    ['a router with no routes', { module: './routers/empty.mjs' }, 'no_routes', undefined, undefined],
    ['a module with no router', { module: './routers/no-router.mjs' }, 'failed', 'VIGIL_NO_ROUTER_EXPORT', /no Express router/],
    ['a missing named export', { module: './routers/good.mjs', export: 'api' }, 'failed', 'VIGIL_NO_ROUTER_EXPORT', /export "api"/],
    ['a loader function', { name: 'loaded', load: () => import(GOOD_ROUTER) }, 'success', undefined, undefined],
    ['a top-level await that never settles', { module: './faults/hangs.mjs', importTimeout: 300 }, 'failed', 'VIGIL_IMPORT_TIMEOUT', /^timed out after 300ms importing \.\/faults\/hangs\.mjs$/],
    ['a loader that never settles', { name: 'stuck', load: () => new Promise(() => {}), importTimeout: '1.5s' }, 'failed', 'VIGIL_IMPORT_TIMEOUT', /^timed out after 1\.5s importing router stuck$/],
    ['an ES module calling process.exit(3)', { module: './faults/exits.mjs' }, 'failed', 'VIGIL_PROCESS_EXIT', /^called process\.exit\(3\) while importing \.\/faults\/exits\.mjs$/],
    ['a CommonJS module calling process.exit(3)', { module: './faults/exits.cjs' }, 'failed', 'VIGIL_PROCESS_EXIT', /^called process\.exit\(3\) while importing \.\/faults\/exits\.cjs$/],
    [
      'a CommonJS module whose require fails',
      { module: './faults/throws.cjs' },
      'failed',
      'MODULE_NOT_FOUND',
      /^Cannot find module '\.\/no-such-driver\.cjs'\nRequire stack:\n- \/.*\/faults\/lib\/db\.cjs\n- \/.*\/faults\/throws\.cjs$/,
    ],
  ];
  for (const [what, spec, outcome, type, message] of table) {
    it(`${what}: ${outcome}${type ? ` (${type})` : ''}`, async () => {
      const [result] = await importRouters(manifestWith([spec]), base, tracer);
      expect(result!.outcome).to.equal(outcome);
      expect(result!.errorType).to.equal(type);
      if (message) expect(result!.error).to.match(message);
      const [span] = exporter.getFinishedSpans();
      expect(span!.name).to.equal('vigil.router.import');
      expect(span!.attributes['vigil.outcome']).to.equal(outcome);
      if (type) expect(span!.attributes['error.type']).to.equal(type);
    });
  }

  it('the manifest-wide startup.importTimeout applies to a router without its own, and process.exit is the real one again after the imports', async () => {
    const realExit = process.exit;
    const m = Manifest.parse({
      service: 't',
      startup: { importTimeout: 200 },
      components: { api: { policy: 'degrade', routers: [{ module: './faults/hangs.mjs' }, { module: './faults/exits.mjs' }, { module: './routers/good.mjs' }] } },
    });
    const results = await importRouters(m, base, tracer);
    expect(results.map((r) => r.error ?? r.outcome)).to.deep.equal([
      'timed out after 200ms importing ./faults/hangs.mjs',
      'called process.exit(3) while importing ./faults/exits.mjs',
      'success',
    ]);
    expect(process.exit).to.equal(realExit);
  });

  it('keeps at most five modules of a long Require stack', () => {
    const stack = Array.from({ length: 8 }, (_, i) => `- /app/m${i}.cjs`).join('\n');
    const message = errorMessage(Object.assign(new Error(`Cannot find module 'x'\nRequire stack:\n${stack}`), { code: 'MODULE_NOT_FOUND' }));
    expect(message.split('\n')).to.deep.equal(["Cannot find module 'x'", 'Require stack:', '- /app/m0.cjs', '- /app/m1.cjs', '- /app/m2.cjs', '- /app/m3.cjs', '- /app/m4.cjs', '- … 3 more']);
    expect(errorMessage(new Error('first line\nsecond line'))).to.equal('first line');
  });

  it('one failing module never stops the others, and only loaded routers are mounted', async () => {
    const results = await importRouters(
      manifestWith([
        { module: './routers/throws.mjs', mount: '/broken' },
        { module: './routers/good.mjs', mount: '/api' },
        { module: './routers/commonjs.cjs', mount: '/old' },
      ]),
      base,
      tracer,
    );
    expect(results.map((r) => r.outcome)).to.deep.equal(['failed', 'success', 'success']);
    expect(results[1]!.routeCount).to.equal(2);
    const app = express();
    mountLoaded(app as never, results);
    expect(hasRoute(app, 'POST', '/api/items')).to.equal(true);
    expect(hasRoute(app, 'GET', '/old/legacy')).to.equal(true);
    expect(exporter.getFinishedSpans()).to.have.length(3);
  });

  it('parents the import spans under the given context', async () => {
    const parent = tracer.startSpan('vigil.startup');
    await importRouters(manifestWith([{ module: './routers/good.mjs' }]), base, tracer, trace.setSpan(context.active(), parent));
    parent.end();
    const child = exporter.getFinishedSpans().find((s) => s.name === 'vigil.router.import')!;
    expect(child.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
  });
});
