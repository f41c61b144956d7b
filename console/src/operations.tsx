/** The operations view: queue depth and lag per channel, bot health and breaker, webhook failures. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, SignedOut, type Operations as Snapshot } from './api.js';
import { debounce, subscribe } from './bus.js';
import { ChannelIcon, channelLabel, duration, time } from './ui.js';

const BREAKER_TEXT: Record<Snapshot['bot']['breaker'], string> = {
  closed: 'Closed: calls pass',
  open: 'Open: failing fast',
  'half-open': 'Half-open: one trial call',
  none: 'No breaker (demo bot)',
};

export function Operations() {
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [replayed, setReplayed] = useState<Record<string, string>>({});

  const load = useCallback(async () => {
    try {
      setSnapshot(await api<Snapshot>('/operations'));
      setError(undefined);
    } catch (err) {
      if (!(err instanceof SignedOut)) setError(err instanceof Error ? err.message : String(err));
    }
  }, []);

  useEffect(() => {
    void load();
    const every = setInterval(() => void load(), 5_000);
    const reload = debounce(() => void load(), 1_000);
    const off = subscribe(reload);
    return () => {
      clearInterval(every);
      off();
      reload.cancel();
    };
  }, [load]);

  const replay = async (webhookId: string, deliveryId: string) => {
    setReplayed((old) => ({ ...old, [deliveryId]: 'Replaying…' }));
    try {
      await api(`/webhooks/${webhookId}/deliveries/${deliveryId}/replay`, 'POST');
      setReplayed((old) => ({ ...old, [deliveryId]: 'Replayed' }));
      await load();
    } catch (err) {
      setReplayed((old) => ({
        ...old,
        [deliveryId]: `Failed: ${err instanceof Error ? err.message : String(err)}`,
      }));
    }
  };

  if (!snapshot) return <p class="empty">{error ?? 'Loading operations…'}</p>;
  const { queue, bot, webhooks } = snapshot;
  return (
    <div class="operations">
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <section class="card" aria-labelledby="ops-queue">
        <h2 id="ops-queue">Queues</h2>
        <p class="stat">
          <span class="stat-value">{queue.pending}</span> messages waiting in all
        </p>
        <table>
          <thead>
            <tr>
              <th scope="col">Channel</th>
              <th scope="col">Depth</th>
              <th scope="col">Lag</th>
              <th scope="col">In handoff</th>
            </tr>
          </thead>
          <tbody>
            {queue.channels.map((row) => (
              <tr key={row.channel} data-channel={row.channel}>
                <td class="channel-cell">
                  <ChannelIcon channel={row.channel} /> {channelLabel(row.channel)}
                </td>
                <td>{row.depth}</td>
                <td class={row.lagMs > 30_000 ? 'warn' : ''}>{row.depth ? duration(row.lagMs) : '–'}</td>
                <td>{row.handoff}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p class="muted small">Per channel over the {queue.scanned} most recent open conversations.</p>
      </section>
      <section class="card" aria-labelledby="ops-bot">
        <h2 id="ops-bot">Bot</h2>
        <p>
          <span class={`health-dot ${bot.healthy ? 'ok' : 'bad'}`} aria-hidden="true" />
          <strong>{bot.healthy ? 'Healthy' : 'Unavailable'}</strong>
          <span class="muted"> · {bot.kind === 'http' ? 'HTTP bot' : 'Demo bot'}</span>
        </p>
        <p>
          Breaker: <span class={`badge breaker-${bot.breaker}`}>{BREAKER_TEXT[bot.breaker]}</span>
        </p>
        <dl class="outcomes">
          {Object.entries(bot.outcomes).map(([outcome, count]) => (
            <div key={outcome}>
              <dt>{outcome}</dt>
              <dd>{count}</dd>
            </div>
          ))}
          {Object.keys(bot.outcomes).length === 0 && <p class="muted">No messages handled yet.</p>}
        </dl>
      </section>
      <section class="card wide" aria-labelledby="ops-webhooks">
        <h2 id="ops-webhooks">Webhook endpoints</h2>
        {webhooks.length === 0 && <p class="muted">No webhook endpoints.</p>}
        {webhooks.map(({ endpoint, failed, retrying }) => (
          <div class="endpoint" key={endpoint.id} data-webhook={endpoint.id}>
            <div class="endpoint-head">
              <span
                class={`health-dot ${failed.length === 0 && endpoint.enabled ? 'ok' : 'bad'}`}
                aria-hidden="true"
              />
              <span class="mono endpoint-url">{endpoint.url}</span>
              <span class={`badge ${endpoint.enabled ? 'badge-open' : 'badge-closed'}`}>
                {endpoint.enabled ? 'Enabled' : 'Disabled'}
              </span>
              {retrying > 0 && <span class="badge badge-pending">{retrying} retrying</span>}
            </div>
            {failed.length === 0 ? (
              <p class="muted small">No failed deliveries.</p>
            ) : (
              <table class="failed">
                <caption class="sr-only">Failed deliveries to {endpoint.url}</caption>
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last error</th>
                    <th scope="col">Failed</th>
                    <th scope="col">
                      <span class="sr-only">Replay</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {failed.map((d) => (
                    <tr key={d.id} data-delivery={d.id}>
                      <td>
                        <span class="mono">{d.eventType}</span>
                      </td>
                      <td>{d.attempts}</td>
                      <td class="error-cell">
                        {d.responseStatus ? `HTTP ${d.responseStatus}` : (d.lastError ?? '–')}
                      </td>
                      <td>{time(d.deadAt)}</td>
                      <td>
                        {replayed[d.id] ? (
                          <span class="muted">{replayed[d.id]}</span>
                        ) : (
                          <button type="button" onClick={() => replay(endpoint.id, d.id)}>
                            Replay
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        ))}
      </section>
    </div>
  );
}
