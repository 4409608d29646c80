/**
 * OpenAPI 3.0/3.1 as the manifest's source of endpoints: real documents on
 * disk (the classic Petstore, a 3.1 document split over three files), the
 * mapping to Vigil's endpoints, and every kind of broken document reported
 * with the file, the JSON pointer inside it and what was expected.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { ManifestError } from '../src/errors.js';
import { loadManifest } from '../src/manifest/load.js';
import { expressRoute, MAX_OPENAPI_BYTES, pointer, serverBasePath } from '../src/manifest/openapi.js';
import type { Endpoint, Manifest } from '../src/manifest/schema.js';
import { unsafeNotProbed } from '../src/monitor/probe-policy.js';

const TSX = import.meta.resolve('tsx');
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/openapi/', import.meta.url));

/** `component METHOD route` of every endpoint. */
const endpointsOf = (m: Manifest) => Object.entries(m.components).flatMap(([c, s]) => s.endpoints.map((e) => `${c} ${e.method} ${e.route}`));
const find = (m: Manifest, method: string, route: string): Endpoint => {
  const e = Object.values(m.components).flatMap((s) => s.endpoints).find((x) => x.method === method && x.route === route);
  if (!e) throw new Error(`no ${method} ${route} in ${endpointsOf(m).join(', ')}`);
  return e;
};

describe('OpenAPI as the manifest', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-openapi-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Writes the files (name → text) into the test's folder; returns the manifest's path. */
  async function write(files: Record<string, string>): Promise<string> {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    return path.join(dir, 'vigil.yaml');
  }
  async function errorOf(manifest: string | object): Promise<ManifestError> {
    const err = await loadManifest(manifest as string).catch((e: unknown) => e);
    expect(err, 'expected a ManifestError').to.be.instanceOf(ManifestError);
    return err as ManifestError;
  }

  describe('the classic Petstore (3.0)', () => {
    it('declares each operation as an endpoint of the component its tag names, under the server path', async () => {
      const { manifest } = await loadManifest(path.join(FIXTURES, 'petstore/vigil.yaml'));
      expect(endpointsOf(manifest)).to.have.members(['pets GET /v1/pets', 'pets POST /v1/pets', 'pets GET /v1/pets/:petId']);
      // Nothing says it needs a login, and the document has no example for petId: not probed until one is given.
      const show = find(manifest, 'GET', '/v1/pets/:petId');
      expect(show.probe).to.deep.include({ auth: false, params: {}, unsafe: false });
    });

    it('takes basePath over the server path, and a default component for untagged operations', async () => {
      const doc = (await import('node:fs')).readFileSync(path.join(FIXTURES, 'petstore/petstore.yaml'), 'utf8').replace(/\n\s+tags:\n\s+- pets/g, '');
      const file = await write({
        'petstore.yaml': doc,
        'vigil.yaml': 'service: petstore\nopenapi: { file: ./petstore.yaml, component: api, basePath: "" }\ncomponents:\n  api: { policy: degrade }\n',
      });
      const { manifest } = await loadManifest(file);
      expect(endpointsOf(manifest)).to.have.members(['api GET /pets', 'api POST /pets', 'api GET /pets/:petId']);
    });
  });

  describe('a 3.1 document split over files', () => {
    let manifest: Manifest;
    before(async () => {
      ({ manifest } = await loadManifest(path.join(FIXTURES, 'shop/vigil.yaml')));
    });

    it('follows $refs across files: path items from paths.yaml, parameters and schemas from components.yaml', () => {
      expect(endpointsOf(manifest)).to.have.members([
        'catalog GET /api/v1/products',
        'catalog POST /api/v1/products',
        'catalog GET /api/v1/products/:productId',
        'catalog GET /api/v1/products/:productId/reviews',
        'orders GET /api/v1/orders/:orderId',
        'orders DELETE /api/v1/orders/:orderId',
      ]);
    });

    it('maps x-vigil-component on the path item, and a tag to a component in any case ("Catalog")', () => {
      expect(manifest.components.orders!.endpoints.map((e) => e.method)).to.have.members(['GET', 'DELETE']);
      expect(manifest.components.catalog!.endpoints).to.have.length(4);
    });

    it('gives path parameters their example values (schema.examples, parameter example)', () => {
      expect(find(manifest, 'GET', '/api/v1/products/:productId').probe.params).to.deep.equal({ productId: 'p-42' });
      expect(find(manifest, 'GET', '/api/v1/orders/:orderId').probe.params).to.deep.equal({ orderId: 'o-7' });
    });

    it('expects a login where a security requirement has no anonymous {} alternative', () => {
      expect(find(manifest, 'GET', '/api/v1/orders/:orderId').probe.auth).to.equal(true);
      expect(find(manifest, 'POST', '/api/v1/products').probe.auth).to.equal(true);
      expect(find(manifest, 'DELETE', '/api/v1/orders/:orderId').probe.auth).to.equal(false); // `- {}` makes the login optional
      expect(find(manifest, 'GET', '/api/v1/products').probe.auth).to.equal(false); // global `security: []`
    });

    it('reads x-vigil-probe as the manifest\'s probe, and leaves out x-vigil-ignore operations', () => {
      expect(find(manifest, 'GET', '/api/v1/products/:productId').probe.latencyWarn).to.equal(2000);
      expect(endpointsOf(manifest).some((e) => e.includes('/internal/metrics'))).to.equal(false);
    });

    it('keeps an endpoint written in the manifest over the operation for the same method and route', async () => {
      const file = await write({
        'vigil.yaml': [
          'service: shop',
          `openapi: ${path.join(FIXTURES, 'shop/openapi.yaml')}`,
          'components:',
          '  catalog:',
          '    policy: degrade',
          '    endpoints:',
          '      - { method: GET, route: /api/v1/products/:productId, probe: { params: { productId: hand-1 } } }',
          '  orders: { policy: fail-fast }',
        ].join('\n'),
      });
      const { manifest: m } = await loadManifest(file);
      const same = Object.values(m.components).flatMap((s) => s.endpoints).filter((e) => e.method === 'GET' && e.route === '/api/v1/products/:productId');
      expect(same).to.have.length(1);
      expect(same[0]!.probe.params).to.deep.equal({ productId: 'hand-1' });
      expect(m.components.catalog!.endpoints).to.have.length(4);
    });

    it('reads the document of an object manifest relative to baseUrl', async () => {
      const load = () => ({ router: null });
      const { manifest: m } = await loadManifest(
        { service: 'shop', openapi: './shop/openapi.yaml', components: { catalog: { policy: 'degrade', routers: [{ name: 'catalog', load }] }, orders: { policy: 'degrade' } } },
        { baseUrl: pathToFileURL(FIXTURES) },
      );
      expect(endpointsOf(m)).to.have.length(6);
      expect(m.components.catalog!.routers[0]!.load, 'functions of an object manifest are kept').to.equal(load);
    });
  });

  it('loads the OpenAPI parser only for a manifest with openapi (importing @vigil/sdk does not)', async () => {
    // A resolve hook (node:module register) logs every module of the parser that is loaded; the built SDK (dist) is imported.
    const log = path.join(dir, 'loaded.txt');
    await writeFile(path.join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); if (/node_modules\\/@readme\\//.test(r.url)) appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
    await writeFile(path.join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});\n`);
    /** The parser's modules loaded by a process that runs `code` after importing @vigil/sdk. */
    const parserModules = async (code: string) => {
      await writeFile(log, '');
      const main = `const { loadManifest } = await import('@vigil/sdk');\n${code}`;
      const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'register.mjs')).href, '--input-type=module', '-e', main], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      return (await readFile(log, 'utf8')).split('\n').filter(Boolean).length;
    };
    expect(await parserModules("await loadManifest({ service: 't', components: { c: { policy: 'degrade', endpoints: ['GET /a'] } } });")).to.equal(0);
    expect(await parserModules(`await loadManifest(${JSON.stringify(path.join(FIXTURES, 'petstore/vigil.yaml'))});`), 'the hook sees the parser when it is loaded').to.be.above(0);
  });

  it('probes a POST operation only with x-vigil-probe: { unsafe: true }', async () => {
    const post = (probe: string) => `    post:\n      tags: [api]\n${probe}      responses:\n        '201': { description: created }\n`;
    const file = await write({
      'vigil.yaml': 'service: s\nopenapi: ./openapi.yaml\ncomponents:\n  api: { policy: degrade }\n',
      'openapi.yaml': `openapi: 3.0.3\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n${post('')}  /b:\n${post('      x-vigil-probe: { unsafe: true, body: { dryRun: true } }\n')}`,
    });
    const { manifest } = await loadManifest(file);
    expect(unsafeNotProbed(manifest, find(manifest, 'POST', '/a'))).to.equal('not probed: POST needs probe.unsafe or a flow');
    expect(unsafeNotProbed(manifest, find(manifest, 'POST', '/b'))).to.equal(undefined);
    expect(find(manifest, 'POST', '/b').probe.body).to.deep.equal({ dryRun: true });
  });

  describe('conversions', () => {
    it('turns path templates into Express routes', () => {
      expect(expressRoute('/pets/{petId}')).to.deep.equal({ route: '/pets/:petId' });
      expect(expressRoute('/a/{x}/b/{y_2}')).to.deep.equal({ route: '/a/:x/b/:y_2' });
      expect(expressRoute('/a/{pet-id}')).to.deep.equal({ bad: 'pet-id' });
    });
    it('takes the path of servers[0].url, with variables at their defaults', () => {
      expect(serverBasePath([{ url: 'https://api.example.com/v2/' }])).to.equal('/v2');
      expect(serverBasePath([{ url: '/api/v1' }])).to.equal('/api/v1');
      expect(serverBasePath([{ url: '{scheme}://h/{base}', variables: { base: { default: 'x/y' }, scheme: { default: 'https' } } }])).to.equal('/x/y');
      expect(serverBasePath(undefined)).to.equal('');
      expect(serverBasePath([{ url: 'https://api.example.com' }])).to.equal('');
    });
    it('escapes JSON pointers (RFC 6901)', () => {
      expect(pointer(['paths', '/pets/{petId}', 'get'])).to.equal('#/paths/~1pets~1{petId}/get');
      expect(pointer(['a~b'])).to.equal('#/a~0b');
    });
  });

  describe('broken documents', () => {
    const MANIFEST = 'service: s\nopenapi: ./openapi.yaml\ncomponents:\n  api: { policy: degrade }\n';
    const doc = (paths: string, head = 'openapi: 3.0.3') => `${head}\ninfo: { title: t, version: "1" }\npaths:\n${paths}`;
    const ok = (extra = '') => `    get:\n      tags: [api]\n${extra}      responses:\n        '200': { description: ok }\n`;

    /** The one issue of the error, with the file the error names. */
    async function issueOf(files: Record<string, string>): Promise<{ file: string; path: string; message: string; line?: number; text: string }> {
      const err = await errorOf(await write({ 'vigil.yaml': MANIFEST, ...files }));
      expect(err.issues, err.message).to.have.length(1);
      return { file: err.file, ...err.issues[0]!, text: err.message };
    }

    it('a missing document: the manifest\'s openapi key, the file and what was expected', async () => {
      const i = await issueOf({});
      expect(i.file).to.equal(path.join(dir, 'vigil.yaml'));
      expect(i.path).to.equal('openapi.file');
      expect(i.line).to.equal(2);
      expect(i.message).to.include(path.join(dir, 'openapi.yaml')).and.include('ENOENT').and.include('expected a YAML or JSON file');
    });

    it('a YAML syntax error: the file, line and column', async () => {
      const i = await issueOf({ 'openapi.yaml': doc('  /a:\n    get: [unclosed\n') });
      expect(i.file).to.equal(path.join(dir, 'openapi.yaml'));
      expect(i.message).to.match(/^not valid YAML or JSON: /);
      expect(i.line).to.be.a('number');
    });

    it('a YAML alias bomb (too many aliases) is refused, not expanded', async () => {
      const anchors = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((c, n) => `${c}: &${c} [${Array(10).fill(`*${'abcdefghi'[n]}`).join(', ')}]`)];
      const i = await issueOf({ 'openapi.yaml': `${doc('  {}\n')}x-bomb:\n${anchors.map((l) => `  ${l}`).join('\n')}\n` });
      expect(i.message).to.match(/^not valid YAML or JSON: .*alias/i);
    });

    it('a JSON syntax error', async () => {
      await write({ 'vigil.yaml': MANIFEST.replace('openapi.yaml', 'openapi.json'), 'openapi.json': '{ "openapi": "3.1.0", "info": { "title": "t", }, }}' });
      const err = await errorOf(path.join(dir, 'vigil.yaml'));
      expect(err.file).to.equal(path.join(dir, 'openapi.json'));
      expect(err.issues[0]!.message).to.match(/^not valid YAML or JSON/);
    });

    it('a $ref to a pointer that does not exist: where the $ref is written, and what is missing', async () => {
      const i = await issueOf({ 'openapi.yaml': doc(`  /a:\n    get:\n      tags: [api]\n      parameters:\n        - $ref: '#/components/parameters/Nope'\n      responses:\n        '200': { description: ok }\n`) });
      expect(i.file).to.equal(path.join(dir, 'openapi.yaml'));
      expect(i.path).to.equal('#/paths/~1a/get/parameters/0/$ref');
      expect(i.line).to.equal(8);
      expect(i.message).to.include('"#/components/parameters/Nope" points nowhere').and.include('"components" is not there');
    });

    it('a $ref into another file that does not have the pointer, and one to a missing file', async () => {
      let i = await issueOf({ 'openapi.yaml': doc('  /a:\n    $ref: ./paths.yaml#/b\n'), 'paths.yaml': `a:\n${ok().replace(/^ {2}/gm, '')}` });
      expect(i.path).to.equal('#/paths/~1a/$ref');
      expect(i.message).to.include(`expected ${path.join(dir, 'paths.yaml')} to have "/b"`);
      i = await issueOf({ 'openapi.yaml': doc('  /a:\n    $ref: ./nowhere.yaml#/a\n') });
      expect(i.file).to.equal(path.join(dir, 'openapi.yaml'));
      expect(i.path).to.equal('#/paths/~1a/$ref');
      expect(i.message).to.include('cannot read').and.include('ENOENT');
    });

    it('a bad $ref inside a referenced file is reported in that file', async () => {
      const i = await issueOf({ 'openapi.yaml': doc('  /a:\n    $ref: ./paths.yaml#/a\n'), 'paths.yaml': `a:\n  get:\n    tags: [api]\n    responses:\n      '200': { $ref: '#/responses/Gone' }\n` });
      expect(i.file).to.equal(path.join(dir, 'paths.yaml'));
      expect(i.path).to.equal("#/a/get/responses/200/$ref");
      expect(i.line).to.equal(5);
    });

    it('a $ref that leaves the document\'s folder, and one to a URL, are refused (nothing is fetched)', async () => {
      await write({ 'outside.yaml': 'a: {}\n' });
      let i = await issueOf({ 'api/openapi.yaml': doc('  /a:\n    $ref: ../outside.yaml#/a\n'), 'vigil.yaml': MANIFEST.replace('./openapi.yaml', './api/openapi.yaml') });
      expect(i.path).to.equal('#/paths/~1a/$ref');
      expect(i.message).to.include('leaves the document\'s folder').and.include('expected a file inside it');
      i = await issueOf({ 'openapi.yaml': doc('  /a:\n    $ref: https://127.0.0.1:9/paths.yaml#/a\n') });
      expect(i.path).to.equal('#/paths/~1a/$ref');
      expect(i.message).to.include('is a URL').and.include('fetches nothing');
    });

    it('a $ref under a JSON Schema $id that is a URL (it would resolve against the URL) is refused', async () => {
      const schema = "          content:\n            application/json:\n              schema:\n                $id: https://schemas.example.com/\n                properties:\n                  x: { $ref: '#/$defs/X' }\n";
      const i = await issueOf({ 'openapi.yaml': doc(`  /a:\n    get:\n      tags: [api]\n      responses:\n        '200':\n          description: ok\n${schema}`, 'openapi: 3.1.0') });
      expect(i.path).to.equal('#/paths/~1a/get/responses/200/content/application~1json/schema/properties/x/$ref');
      expect(i.message).to.include('under "$id: https://schemas.example.com/"').and.include('fetches nothing');
    });

    it('Swagger 2.0 and other versions', async () => {
      let i = await issueOf({ 'openapi.yaml': 'swagger: "2.0"\ninfo: { title: t, version: "1" }\npaths: {}\n' });
      expect(i.path).to.equal('#/swagger');
      expect(i.line).to.equal(1);
      expect(i.message).to.include('Swagger 2.0 is not supported: expected an OpenAPI 3.0 or 3.1 document');
      i = await issueOf({ 'openapi.yaml': doc('  {}\n', 'openapi: 4.0.0') });
      expect(i.path).to.equal('#/openapi');
      expect(i.message).to.equal('expected "openapi: 3.0.x" or "3.1.x", got "4.0.0"');
    });

    it('a document that does not match the OpenAPI schema', async () => {
      const i = await issueOf({ 'openapi.yaml': doc('  /a:\n    get:\n      tags: [api]\n') });
      expect(i.message).to.match(/^not a valid OpenAPI 3\.0\.3 document: /).and.include('responses');
    });

    it('a document over the size cap', async () => {
      const i = await issueOf({ 'openapi.yaml': `${doc('  {}\n')}# ${'x'.repeat(MAX_OPENAPI_BYTES)}\n` });
      expect(i.message).to.include('over 10 MiB').and.include(`expected at most ${MAX_OPENAPI_BYTES} bytes`);
    });

    it('a bad x-vigil-probe value: the pointer to the field and the probe schema\'s expectation', async () => {
      const i = await issueOf({ 'openapi.yaml': doc(ok('      x-vigil-probe: { timeout: soon }\n').replace(/^/, '  /a/{id}:\n').replace('get:\n', 'get:\n      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]\n')) });
      expect(i.path).to.equal('#/paths/~1a~1{id}/get/x-vigil-probe/timeout');
      expect(i.line).to.equal(8);
      expect(i.message).to.include('GET /a/{id}: x-vigil-probe.timeout: expected a duration');
    });

    it('a bad x-vigil-slo value: the pointer to the field and the SLO schema\'s expectation', async () => {
      const i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-slo: { availability: 100% }\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-slo/availability');
      expect(i.message).to.include('GET /a: x-vigil-slo.availability: expected an objective in percent from 50 up to (not including) 100');
    });

    it('vigil slo generates the burn-rate rules of an operation\'s x-vigil-slo', async function () {
      this.timeout(40_000);
      await write({ 'vigil.yaml': MANIFEST, 'openapi.yaml': doc(`  /orders:\n${ok('      x-vigil-slo: { availability: 99.5% }\n')}  /health-free:\n${ok()}`) });
      const cli = fileURLToPath(new URL('../src/cli/vigil.ts', import.meta.url));
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', TSX, cli, 'slo', '--manifest', 'vigil.yaml', '--format', 'prometheus'], { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(r.code, r.stderr).to.equal(0);
      // Only the operation with an objective has rules; its budget is 0.5 %.
      expect(r.stdout).to.include('http_route="/orders"').and.include('VigilSLOBurnRatePage');
      expect(r.stdout).not.to.include('/health-free');
      expect(r.stdout).to.match(/14\.4 \* 0\.005|0\.072/);
    });

    it('x-vigil-probe.params that is not a map is reported, not replaced by the examples', async () => {
      const i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-probe: { params: id=1 }\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-probe/params');
      expect(i.message).to.match(/^GET \/a: x-vigil-probe\.params: expected record/);
    });

    it('x-vigil-probe that is not an object, x-vigil-ignore that is not a boolean, an unknown x-vigil-* extension', async () => {
      let i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-probe: yes\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-probe');
      expect(i.message).to.include('expected x-vigil-probe to be an object');
      i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-ignore: "yes"\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-ignore');
      expect(i.message).to.include('expected x-vigil-ignore to be true or false');
      i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-componnet: api\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-componnet');
      expect(i.message).to.equal('unknown extension "x-vigil-componnet": expected one of x-vigil-component, x-vigil-probe, x-vigil-slo, x-vigil-ignore');
    });

    it('x-vigil-component naming no component, and an operation no component claims', async () => {
      let i = await issueOf({ 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-component: billing\n')}`) });
      expect(i.path).to.equal('#/paths/~1a/get/x-vigil-component');
      expect(i.message).to.equal('GET /a: x-vigil-component is "billing": expected a component of the manifest (api)');
      i = await issueOf({ 'openapi.yaml': doc(`  /pets/{petId}:\n    get:\n      tags: [pets]\n      parameters: [{ name: petId, in: path, required: true, schema: { type: string } }]\n      responses:\n        '200': { description: ok }\n`) });
      expect(i.path).to.equal('#/paths/~1pets~1{petId}/get');
      expect(i.message).to.equal('GET /pets/{petId} belongs to no component: expected "x-vigil-component", a tag naming a component of the manifest (api), or "openapi.component" in the manifest');
    });

    it('a path parameter Express cannot name', async () => {
      const i = await issueOf({ 'openapi.yaml': doc(`  /a/{pet-id}:\n${ok('      parameters: [{ name: pet-id, in: path, required: true, schema: { type: string } }]\n')}`) });
      expect(i.path).to.equal('#/paths/~1a~1{pet-id}');
      expect(i.message).to.include('"{pet-id}" cannot be an Express route parameter');
    });

    it('vigil preflight exits 2 on a broken document, naming the file and the pointer', async function () {
      this.timeout(40_000);
      await write({ 'vigil.yaml': MANIFEST, 'openapi.yaml': doc(`  /a:\n${ok('      x-vigil-ignore: maybe\n')}`) });
      const cli = fileURLToPath(new URL('../src/cli/vigil.ts', import.meta.url));
      const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', TSX, cli, 'preflight', '--manifest', 'vigil.yaml'], { cwd: dir, timeout: 30_000 }, (err, _out, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.include(`${path.join(dir, 'openapi.yaml')}:7:23 #/paths/~1a/get/x-vigil-ignore: GET /a: expected x-vigil-ignore to be true or false, got "maybe"`);
    });

    it('two operations that become the same route', async () => {
      const param = (n: string) => `      parameters: [{ name: ${n}, in: path, required: true, schema: { type: string } }]\n`;
      const i = await issueOf({ 'openapi.yaml': doc(`  /a/{x}:\n${ok(param('x'))}  /a/{y}:\n${ok(param('y'))}`) });
      expect(i.path).to.equal('#/paths/~1a~1{y}/get');
      expect(i.message).to.equal('GET /a/{y} matches the same requests as GET /a/{x}: expected one operation per route');
    });

    it('openapi.component naming no component, and an unknown key in the openapi object', async () => {
      let err = await errorOf(await write({ 'vigil.yaml': MANIFEST.replace('./openapi.yaml', '{ file: ./openapi.yaml, component: nope }'), 'openapi.yaml': doc(ok().replace(/^/, '  /a:\n')) }));
      expect(err.file).to.equal(path.join(dir, 'vigil.yaml'));
      expect(err.issues[0]).to.deep.include({ path: 'openapi.component', message: 'no component "nope" in "components": expected one of api', line: 2 });
      err = await errorOf(await write({ 'vigil.yaml': MANIFEST.replace('./openapi.yaml', '{ file: ./openapi.yaml, base: /x }') }));
      expect(err.issues[0]!.path).to.equal('openapi');
      expect(err.issues[0]!.message).to.include('unknown key "base"');
    });
  });
});
