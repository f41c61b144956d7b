/** @module Defaults for every tunable, each with the reason for its value. */

export const DEFAULTS = {
  /**
   * One process runs everything, as a single `npm start` should; `web` and `worker` split ingest from
   * bot work for deployments that scale them apart (docs/running.md#roles).
   */
  ROLE: 'all' as 'all' | 'web' | 'worker',
  /** SPEC §2. */
  PORT: 3000,
  HOST: '0.0.0.0',
  /** SPEC §2: one day covers every provider's retry horizon for a single delivery attempt chain. */
  DEDUPE_TTL_S: 86_400,
  RATE_LIMIT_PER_MIN: 600,
  /** SPEC §2: 30 minutes of silence ends a session (the usual analytics definition). */
  SESSION_IDLE_S: 1_800,
  /** SPEC §9: one conversation per channel thread, as every channel worked before contacts. */
  CONVERSATION_SCOPE: 'channel' as 'channel' | 'contact',
  /** SPEC §4.4: a dead process's conversation is taken over within this time. */
  LEASE_MS: 30_000,
  /** Concurrent conversations one process works on; bounded by p-queue. */
  WORKER_CONCURRENCY: 32,
  /** SPEC §4.5: accepted-but-unprocessed messages beyond this answer 503 + Retry-After. */
  QUEUE_MAX_PENDING: 100_000,
  /** Seconds a client is told to wait when the queue is full. */
  QUEUE_RETRY_AFTER_S: 5,
  /** Redis queue partitions (hash-tag groups). More spreads a Cluster better; 16 is plenty for one node. */
  QUEUE_PARTITIONS: 16,
  /** Key prefix in Redis, so one Redis can host several gateways or test runs. */
  REDIS_KEY_PREFIX: 'sb',
  /** Replica confirmations an acknowledged write needs; auto: 1 where the master has a replica, else 0. */
  REDIS_WAIT_REPLICAS: 'auto',
  /**
   * How long a write waits for them: far above a healthy replica's lag on a LAN (well under 1 ms), and
   * short enough that a provider's retry after the 503 comes soon.
   */
  REDIS_WAIT_TIMEOUT_MS: 500,
  /** Largest accepted request body on the API and webhooks (Twilio and Slack payloads are far smaller). */
  BODY_LIMIT_BYTES: 1_048_576,
  /** SPEC §6: the bot gets this long per attempt. */
  BOT_TIMEOUT_MS: 10_000,
  /**
   * How long after acceptance an unanswered message shows the customer a typing indicator (where the
   * channel has one, src/typing/): a bot that answers sooner never flashes one. 0 = at once.
   */
  TYPING_AFTER_MS: 800,
  /** Attempts per message before the fallback reply (first try included). */
  BOT_MAX_ATTEMPTS: 3,
  /**
   * Attempts in flight to one outbound webhook endpoint over all processes (docs/pacing.md): enough
   * for a healthy CRM, few enough that one slow endpoint holds few slots.
   */
  WEBHOOKS_ENDPOINT_CONCURRENCY: 8,
  /** Consecutive failed attempts to one webhook endpoint, over all processes, that open its breaker. */
  WEBHOOKS_BREAKER_THRESHOLD: 5,
  /** How long an open webhook breaker waits before its one trial: a minute spares a dead endpoint. */
  WEBHOOKS_BREAKER_COOLDOWN_MS: 60_000,
  /** Consecutive failed messages that open the circuit breaker. */
  BOT_BREAKER_THRESHOLD: 5,
  /** How long the breaker stays open before one trial request. */
  BOT_BREAKER_COOLDOWN_MS: 30_000,
  /** Largest bot response accepted. */
  BOT_MAX_RESPONSE_BYTES: 262_144,
  BOT_FALLBACK_TEXT: "Sorry, I can't answer right now. Please try again in a moment.",
  /**
   * SPEC §8: a bot failing with its breaker open hands the conversation to humans only when asked
   * to; off, the customer gets the fallback reply each time, as without handoffs.
   */
  HANDOFF_ON_BOT_FAILURE: false,
  /** SPEC §8: 0 = a handoff lasts until an agent releases it; no timer is guessed for a team. */
  HANDOFF_IDLE_RELEASE_S: 0,
  /**
   * Bound of the whole shutdown (docs/shutdown.md): in-flight messages are handed back and every socket
   * still open (slow requests, WebSockets, half-open upgrades) is destroyed when it runs out.
   */
  SHUTDOWN_TIMEOUT_MS: 20_000,
  /**
   * How long the listener keeps answering 503 after SIGTERM even when nothing is in flight, so a load
   * balancer sees `/readyz` fail before connections are refused. 0: no wait (tests, process managers
   * without a load balancer); a few seconds behind one.
   */
  SHUTDOWN_DRAIN_MS: 0,
  LOG_LEVEL: 'info',
} as const;
