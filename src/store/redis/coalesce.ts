/**
 * @module One socket write per event-loop turn for a Redis connection's commands.
 *
 * ioredis writes every command to its socket at once: a `write(2)` per command, each costing the
 * process a system call, and the server a read. Corked until the turn's ticks have run (the pattern
 * Node's `writable.cork()` documentation gives), the commands issued in one turn (the continuations
 * of one socket read of replies, say) leave in one `writev`. Unlike ioredis's auto-pipelining, nothing
 * waits for an earlier batch's replies, so a chain of dependent commands is not slowed down, and the
 * commands keep their order on the connection, which is all their replies' matching relies on.
 */
import type { Writable } from 'node:stream';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './connection.js';

const PATCHED = Symbol('switchboard.coalesced');

function coalesceStream(stream: Writable & { [PATCHED]?: true }): void {
  if (stream[PATCHED]) return;
  stream[PATCHED] = true;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function coalescedWrite(this: Writable, ...args: Parameters<Writable['write']>) {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable['write'];
}

function coalesceNode(redis: Redis): void {
  const patch = () => {
    const stream = (redis as unknown as { stream?: Writable }).stream;
    if (stream) coalesceStream(stream);
  };
  patch();
  // Every reconnect makes a new socket.
  redis.on('connect', patch);
}

/** Coalesces the writes of `client`'s connections, present and future (a Cluster's nodes too). */
export function coalesceWrites(client: RedisClient): void {
  if (client.isCluster) {
    const cluster = client as Cluster;
    for (const node of cluster.nodes()) coalesceNode(node);
    cluster.on('+node', (node: Redis) => coalesceNode(node));
    return;
  }
  coalesceNode(client as Redis);
}
