/**
 * A scripted HTTP server on loopback, standing in for RunPod (or for the app's upstream) in unit
 * tests: each test says what the next requests get, and reads back what was sent. The e2e tests
 * use the real local endpoint instead.
 */

import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** Sent as is instead of JSON. */
  raw?: string;
  headers?: Record<string, string>;
  /** Drop the connection without answering. */
  hangUp?: boolean;
}

export type Responder = (request: Recorded) => Reply;

export class MockServer {
  readonly requests: Recorded[] = [];
  private readonly _server: Server;
  private readonly _queue: Responder[] = [];
  private _fallback: Responder = () => ({ status: 500, body: { error: "mock: no reply scripted" } });

  private constructor() {
    this._server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const recorded: Recorded = {
          method: request.method ?? "",
          path: request.url ?? "",
          headers: request.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        };
        this.requests.push(recorded);
        const reply = (this._queue.shift() ?? this._fallback)(recorded);
        if (reply.hangUp) {
          request.socket.destroy();
          return;
        }
        const text = reply.raw ?? JSON.stringify(reply.body ?? {});
        response.writeHead(reply.status ?? 200, {
          "Content-Type": reply.raw === undefined ? "application/json" : "text/plain",
          ...reply.headers,
        });
        response.end(text);
      });
    });
  }

  static async start(): Promise<MockServer> {
    const mock = new MockServer();
    await new Promise<void>((resolve) => mock._server.listen(0, "127.0.0.1", resolve));
    return mock;
  }

  get url(): string {
    return `http://127.0.0.1:${(this._server.address() as AddressInfo).port}`;
  }

  /** The next requests get these replies, in order; after them, the fallback. */
  reply(...replies: Array<Reply | Responder>): void {
    for (const reply of replies) this._queue.push(typeof reply === "function" ? reply : () => reply);
  }

  otherwise(responder: Responder): void {
    this._fallback = responder;
  }

  reset(): void {
    this.requests.length = 0;
    this._queue.length = 0;
    this._fallback = () => ({ status: 500, body: { error: "mock: no reply scripted" } });
  }

  async stop(): Promise<void> {
    this._server.closeAllConnections();
    await new Promise<void>((resolve) => this._server.close(() => resolve()));
  }
}

/** A loopback port nothing listens on (bound, then released), for "endpoint is down" tests. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
