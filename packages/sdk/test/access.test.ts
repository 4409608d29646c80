import { expect } from 'chai';
import { decideAccess, isLoopback, tokenMatches } from '../src/health/access.js';

describe('detailed health access', () => {
  // One row per caller: policy, Authorization header, remote address, allowed?
  const table: Array<[string, { token?: string; allowLoopback: boolean }, string | undefined, string, boolean]> = [
    ['loopback, no token configured', { allowLoopback: true }, undefined, '127.0.0.1', true],
    ['IPv6 loopback', { allowLoopback: true }, undefined, '::1', true],
    ['IPv4-mapped loopback', { allowLoopback: true }, undefined, '::ffff:127.0.0.1', true],
    ['remote, no token configured', { allowLoopback: true }, undefined, '10.1.2.3', false],
    ['remote with the right token', { token: 't0ken', allowLoopback: true }, 'Bearer t0ken', '10.1.2.3', true],
    ['remote with a wrong token', { token: 't0ken', allowLoopback: true }, 'Bearer t0ke', '10.1.2.3', false],
    ['remote with a token but none configured', { allowLoopback: true }, 'Bearer anything', '10.1.2.3', false],
    ['loopback when loopback is not allowed', { allowLoopback: false }, undefined, '127.0.0.1', false],
    ['loopback not allowed, right token', { token: 't0ken', allowLoopback: false }, 'bearer t0ken', '127.0.0.1', true],
    ['basic auth is not a bearer token', { token: 't0ken', allowLoopback: false }, 'Basic dDBrZW4=', '10.0.0.1', false],
  ];
  for (const [name, policy, auth, addr, allowed] of table) {
    it(`${name}: ${allowed ? 'allowed' : 'refused'}`, () => {
      const d = decideAccess({ token: policy.token, allowLoopback: policy.allowLoopback }, auth, addr);
      expect(d.allowed).to.equal(allowed);
      if (!d.allowed) {
        expect(d.status).to.equal(401);
        expect(d.reason).to.be.a('string').and.not.contain('t0ken');
      }
    });
  }

  it('says why access is refused in each configuration', () => {
    const reason = (token: string | undefined, allowLoopback: boolean) => {
      const d = decideAccess({ token, allowLoopback }, undefined, '10.0.0.1');
      return d.allowed ? '' : d.reason;
    };
    expect(reason('t', true)).to.match(/needs a bearer token/);
    expect(reason(undefined, true)).to.match(/loopback callers only/);
    expect(reason(undefined, false)).to.match(/closed: loopback access is off and no health token is set/);
  });

  it('compares tokens of different lengths without throwing', () => {
    expect(tokenMatches('a', 'a-much-longer-token')).to.equal(false);
    expect(tokenMatches('same', 'same')).to.equal(true);
  });

  it('does not treat look-alike addresses as loopback', () => {
    expect(isLoopback('1.127.0.0')).to.equal(false);
    expect(isLoopback('::ffff:10.0.0.1')).to.equal(false);
    expect(isLoopback(undefined)).to.equal(false);
  });
});
