/**
 * Real PostgreSQL and Redis for the dependency-check tests: Debian's binaries
 * (installed by scripts/install-services.sh when missing), each started here in
 * its own data folder under a temp dir, on a free 127.0.0.1 port, and stopped by
 * the PID it started. PostgreSQL refuses to run as root: as root it runs as
 * `nobody` (setpriv). Each server can be stopped and started again on the same
 * port and data, for outage tests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { freePort, makeTempDir, removeTempDir, REPO_ROOT, startProcess, withPortRetry, type RunningProcess } from './rig.js';

const INSTALL_HINT = 'run `bash scripts/install-services.sh` (as root: it apt-get installs postgresql and redis-server)';
/** `nobody`/`nogroup` on Debian: PostgreSQL's user when the tests run as root. */
const NOBODY = { uid: 65534, gid: 65534 };

/** The directory holding initdb and postgres: the newest /usr/lib/postgresql/<major>/bin. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => existsSync(path.join(root, d, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!majors.length) throw new Error(`PostgreSQL is not installed (no ${root}/*/bin/postgres): ${INSTALL_HINT}`);
  return path.join(root, majors[0]!, 'bin');
}

export function redisServerBin(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  if (existsSync('/usr/bin/redis-server')) return '/usr/bin/redis-server';
  throw new Error(`redis-server is not installed: ${INSTALL_HINT}`);
}

/** Installs the servers when missing (idempotent, quiet when present). */
export function ensureServices(): void {
  execFileSync('bash', [path.join(REPO_ROOT, 'scripts/install-services.sh')], { stdio: 'inherit' });
}

/**
 * A server process started on a free port the first time and on the same port
 * after a stop: an outage test starts it again where the app points.
 */
function restartable(launch: (port: number) => Promise<RunningProcess>) {
  let port = 0;
  let proc: RunningProcess | undefined;
  return {
    get port() {
      return port;
    },
    async start(): Promise<void> {
      if (port) proc = await launch(port);
      else {
        await withPortRetry(async () => {
          port = await freePort();
          proc = await launch(port);
        });
      }
    },
    async stop(): Promise<void> {
      await proc?.stop();
      proc = undefined;
    },
  };
}

export interface Postgres {
  port: number;
  /** A unique password of the superuser `postgres`, made for this run. */
  password: string;
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  url: string;
  /** The same URL with another password. */
  wrongUrl: string;
  /** Runs SQL as the superuser on a connection of its own. */
  sql<T = Record<string, unknown>>(text: string): Promise<T[]>;
  /** How many times a statement matching `pattern` ran since the last `resetStatements()` (pg_stat_statements). */
  calls(pattern: RegExp): Promise<number>;
  resetStatements(): Promise<void>;
  /** Fast shutdown (SIGINT to the PID started); `start()` brings it back on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  remove(): Promise<void>;
}

/** `password`: the superuser's (default: a unique one made for this run). */
export async function startPostgres(opts: { password?: string } = {}): Promise<Postgres> {
  const bin = postgresBinDir();
  const dir = await makeTempDir('postgres');
  // The server's user must reach its folder: the temp dir is 0700 root's otherwise.
  chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const password = opts.password ?? `pgpw-${randomBytes(8).toString('hex')}`;
  const asRoot = process.getuid?.() === 0;
  const pwfile = path.join(dir, 'pw');
  await writeFile(pwfile, password);
  if (asRoot) {
    chownSync(dir, NOBODY.uid, NOBODY.gid);
    chownSync(pwfile, NOBODY.uid, NOBODY.gid);
  }
  const initdb = [path.join(bin, 'initdb'), '-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync'];
  const r = spawnSync(asRoot ? 'setpriv' : initdb[0]!, asRoot ? ['--reuid', String(NOBODY.uid), '--regid', String(NOBODY.gid), '--clear-groups', '--', ...initdb] : initdb.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`initdb failed (${r.status}): ${r.stderr || r.stdout}`);

  const server = restartable((port) =>
    startProcess({
      name: 'postgres',
      bin: path.join(bin, 'postgres'),
      args: ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'fsync=off', '-c', 'max_connections=50'],
      cwd: dir,
      runAs: NOBODY,
      stopSignal: 'SIGINT', // fast shutdown: connected clients do not hold it up
      ready: async () => (await sql('SELECT 1').then(() => true, () => false)),
    }),
  );
  const url = (pw: string) => `postgres://postgres:${pw}@127.0.0.1:${server.port}/postgres`;
  async function sql<T>(text: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: url(password), connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query(text)).rows as T[];
    } finally {
      await client.end().catch(() => {});
    }
  }
  await server.start();
  await sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  return {
    get port() {
      return server.port;
    },
    password,
    get url() {
      return url(password);
    },
    get wrongUrl() {
      return url(`wrong-${password}`);
    },
    sql,
    async calls(pattern) {
      const rows = await sql<{ query: string; calls: string }>('SELECT query, calls FROM pg_stat_statements');
      return rows.filter((row) => pattern.test(row.query)).reduce((n, row) => n + Number(row.calls), 0);
    },
    async resetStatements() {
      await sql('SELECT pg_stat_statements_reset()');
    },
    stop: server.stop,
    start: server.start,
    async remove() {
      await server.stop();
      await removeTempDir(dir);
    },
  };
}

export interface Redis {
  port: number;
  password: string;
  /** `redis://:<password>@127.0.0.1:<port>` */
  url: string;
  /** Runs one command on a connection of its own. */
  command(args: string[]): Promise<unknown>;
  /** PING calls since the last `resetStats()` (INFO commandstats). */
  pings(): Promise<number>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
}

export async function startRedis(): Promise<Redis> {
  const bin = redisServerBin();
  const dir = await makeTempDir('redis');
  const password = `rdpw-${randomBytes(8).toString('hex')}`;
  const server = restartable((port) =>
    startProcess({
      name: 'redis-server',
      bin,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--requirepass', password, '--daemonize', 'no'],
      cwd: dir,
      ready: async () => (await command(['PING']).then((a) => a === 'PONG', () => false)),
    }),
  );
  const url = () => `redis://:${password}@127.0.0.1:${server.port}`;
  async function command(args: string[]): Promise<unknown> {
    const client = createClient({ url: url(), socket: { connectTimeout: 3000, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    try {
      return await client.sendCommand(args);
    } finally {
      client.destroy();
    }
  }
  await server.start();
  return {
    get port() {
      return server.port;
    },
    password,
    get url() {
      return url();
    },
    command,
    async pings() {
      const info = String(await command(['INFO', 'commandstats']));
      return Number(/cmdstat_ping:calls=(\d+)/.exec(info)?.[1] ?? 0);
    },
    async resetStats() {
      await command(['CONFIG', 'RESETSTAT']);
    },
    stop: server.stop,
    start: server.start,
    async remove() {
      await server.stop();
      await removeTempDir(dir);
    },
  };
}
