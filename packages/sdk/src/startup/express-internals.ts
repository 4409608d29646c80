/**
 * The parts of Express's router that the inventory reads. Never exported from
 * the package: these are internals, described here for Express 4
 * (lib/router/layer.js, lib/router/route.js) and Express 5 (the `router`
 * package, lib/layer.js and lib/route.js).
 */

export interface RouteInternal {
  /** The path as declared: `router.get('/users/:id', …)`. */
  path: string | RegExp | Array<string | RegExp>;
  /** Lower-case method names handled; `_all` for `router.all()`. */
  methods: Record<string, boolean>;
  /** The route's handlers, each with its method (`undefined` for `all()`). */
  stack?: Array<{ method?: string; handle: unknown; name?: string }>;
}

export interface LayerInternal {
  handle: unknown;
  /** The handler's name when the layer was made (kept when instrumentation wraps `handle`). */
  name?: string;
  route?: RouteInternal;
  /** Set by `match()`: the part of the path this layer matched. */
  path?: string;
  params?: Record<string, string>;
  keys?: Array<{ name: string | number }>;
  /** Express 4: the compiled path (`fast_slash` is set for `'/'`). */
  regexp?: RegExp & { fast_slash?: boolean; fast_star?: boolean };
  /** Express 5 (router ≥ 2.2): the path given to `use()` or `route()`. */
  rawPath?: string | RegExp | Array<string | RegExp>;
  /**
   * Express 4 and router < 2.3 return a boolean and leave the match on the
   * layer (`path`, `params`); router ≥ 2.3 (Express 5.2+) returns it instead.
   */
  match(path: string): boolean | { path: string; params: Record<string, string> };
}

export interface RouterInternal {
  stack: LayerInternal[];
}

/** An Express 4 application creates its router lazily (`app._router`); Express 5 on first `app.router` read. */
export interface AppInternal {
  lazyrouter?: () => void;
  _router?: RouterInternal;
  router?: RouterInternal;
  /** Every Express app has these two; `app.use()` tells an app from a middleware by them. */
  handle?: unknown;
  set?: unknown;
}

/**
 * `app.use(path, subApp)` does not keep the sub-app on the layer: it mounts a
 * closure named `mounted_app` that calls `subApp.handle(req, res, next)`.
 * `subApp.handle` (Express 5) or the sub-app's first middleware, Express's own
 * `expressInit` (Express 4), sets the request's prototype to
 * `subApp.request`, whose `app` is the sub-app: see `subAppOf` in inventory.ts.
 */
export const MOUNTED_APP = 'mounted_app';
