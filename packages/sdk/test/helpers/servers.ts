import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** Starts `server` on 127.0.0.1 and a free port; returns the port. */
export async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    (server as http.Server).closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await close(s);
  return port;
}

/** An HTTP server answering every request with `status` after `delayMs`. */
export function httpServer(status: number, delayMs = 0): http.Server {
  return http.createServer((_req, res) => {
    setTimeout(() => res.writeHead(status).end(), delayMs).unref();
  });
}
