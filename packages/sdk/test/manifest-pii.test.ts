/**
 * No personal data in metric labels: every manifest value that becomes a label
 * (component, router, check, flow and step names, endpoint and flow paths, the
 * service name, version and environment) is refused when it holds an email
 * address. Secrets and test identities read from the environment, and request
 * bodies (never labels), stay allowed.
 */
import { expect } from 'chai';
import { parseManifestText } from '../src/manifest/load.js';
import { looksLikeEmail } from '../src/manifest/schema.js';
import { manifestErrorOf } from './helpers/manifest.js';

const FILE = 'vigil.yaml';
const EMAIL = 'jane.doe@example.com';

const VALID = `
service: shop
version: 1.2.3
environment: production
components:
  auth:
    policy: fail-fast
    routers: [{ module: ./routers/auth.js, mount: /api/auth }]
    endpoints:
      - POST /api/auth/login
      - method: GET
        route: /api/auth/me
        probe:
          headers: { authorization: "Bearer \${env:PROBE_TOKEN}", x-user: { env: PROBE_USER_EMAIL } }
          body: { email: health@test.example, note: "\${env:PROBE_ADMIN_EMAIL}" }
    dependencies:
      db: { type: tcp, url: { env: DATABASE_URL } }
    flows:
      login:
        description: Logs in as ops@example.com's test account (a description is not a label)
        steps:
          - name: login
            method: POST
            path: /api/auth/login
            body: { email: "\${env:PROBE_ADMIN_EMAIL}", password: "\${env:PROBE_ADMIN_PASSWORD}" }
            capture: { token: accessToken }
          - name: me
            method: GET
            path: /api/users/\${env:PROBE_ADMIN_EMAIL}
            headers: { authorization: "Bearer \${token}" }
monitor:
  integration:
    cors: { path: /api/auth/me, origin: "https://app.example.com" }
`;

describe('manifest: no email address in values that become labels', () => {
  it('accepts emails in request bodies, descriptions and ${env:NAME} placeholders', () => {
    const m = parseManifestText(VALID, FILE);
    expect(m.components.auth!.flows.login!.steps![1]!.path).to.equal('/api/users/${env:PROBE_ADMIN_EMAIL}');
  });

  const cases: Array<[string, string, string, string]> = [
    ['the service name', 'service: shop', `service: ${EMAIL}`, 'service'],
    ['the version', 'version: 1.2.3', `version: 1.2.3+${EMAIL}`, 'version'],
    ['the environment', 'environment: production', `environment: ${EMAIL}`, 'environment'],
    ['a component name', '  auth:\n    policy', `  "${EMAIL}":\n    policy`, `components.${EMAIL}`],
    ['a router name', '{ module: ./routers/auth.js, mount', `{ name: "${EMAIL}", module: ./routers/auth.js, mount`, 'components.auth.routers.0.name'],
    ['a router named by its module file', 'module: ./routers/auth.js', `module: ./routers/${EMAIL}.js`, 'components.auth.routers.0.module'],
    ['a check name', '      db: { type: tcp', `      "${EMAIL}": { type: tcp`, `components.auth.dependencies.${EMAIL}`],
    ['a flow name', '      login:\n', `      "${EMAIL}":\n`, `components.auth.flows.${EMAIL}`],
    ['a flow step name', '          - name: me', `          - name: "${EMAIL}"`, 'components.auth.flows.login.steps.1.name'],
    ['an endpoint path (shorthand)', '      - POST /api/auth/login', `      - POST /api/users/${EMAIL}`, 'components.auth.endpoints.0.route'],
    ['an endpoint path', '        route: /api/auth/me', `        route: /api/users/${EMAIL}/me`, 'components.auth.endpoints.1.route'],
    ['a flow step path', 'path: /api/users/${env:PROBE_ADMIN_EMAIL}', `path: /api/users/${EMAIL}`, 'components.auth.flows.login.steps.1.path'],
    ['a router mount path', 'mount: /api/auth }', `mount: /api/${EMAIL} }`, 'components.auth.routers.0.mount'],
    ['an integration check path', 'cors: { path: /api/auth/me', `cors: { path: /api/${EMAIL}`, 'monitor.integration.cors.path'],
  ];
  for (const [what, from, to, where] of cases) {
    it(`refuses an email address in ${what}, naming the file, the path and what to do`, () => {
      const text = VALID.replace(from, to);
      expect(text, 'the case changes the manifest').to.not.equal(VALID);
      const err = manifestErrorOf(text, FILE);
      const issue = err.issues.find((i) => i.path === where);
      expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
      expect(issue!.message).to.match(/looks like an email address; names become metric labels: use an identifier/);
      expect(err.message).to.contain(FILE);
      expect(issue!.line, 'the line of the value').to.be.a('number');
    });
  }

  it('knows an address from a path with "@" in it', () => {
    for (const yes of [EMAIL, 'a@b.io', '/users/x+tag@mail.example.org/profile', 'ops@example.co.uk', "o'brien@example.ie"]) expect(looksLikeEmail(yes), yes).to.equal(true);
    for (const no of ['/@me', '/users/@me/settings', '/@scope/pkg', 'user@localhost', '@example.com', 'no-at-sign.example.com', '/users/${env:PROBE_ADMIN_EMAIL}', 'v1@2']) expect(looksLikeEmail(no), no).to.equal(false);
  });
});
