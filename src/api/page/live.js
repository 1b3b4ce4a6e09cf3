// The live stream: one EventSource on /api/v1/stream. The browser reconnects by itself after a
// network error and sends Last-Event-ID, so the server replays what was missed; after an HTTP
// error (401, 5xx) it gives up, so we reopen it ourselves with ?since= and a growing delay.

import { token } from "./api.js";

export function connect(handlers) {
  const { onIncident, onDevice, onCrew, onResync, onStatus, onRefused } = handlers;
  let source = null;
  let lastId = null;
  let epoch = null;
  let delay = 1000;
  let timer = null;
  let stopped = false;
  const stats = { events: 0, resyncs: 0, opens: 0 };

  const track = (fn) => (e) => {
    if (e.lastEventId) lastId = e.lastEventId;
    stats.events += 1;
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return; // a malformed event is skipped, not fatal
    }
    fn(data);
  };

  function open() {
    if (stopped) return;
    const q = new URLSearchParams({ access_token: token.get() || "" });
    if (lastId !== null) q.set("since", lastId);
    source = new EventSource(`/api/v1/stream?${q}`);
    source.addEventListener("open", () => {
      delay = 1000;
      stats.opens += 1;
      onStatus(true);
    });
    source.addEventListener("hello", (e) => {
      const hello = JSON.parse(e.data);
      // Sequence numbers restart with the server: a new epoch means our view may be stale.
      if (epoch !== null && hello.epoch !== epoch) onResync("the server restarted");
      epoch = hello.epoch;
    });
    source.addEventListener("incident", track(onIncident));
    source.addEventListener("device", track(onDevice));
    source.addEventListener("crew", track(onCrew));
    source.addEventListener(
      "resync",
      track((body) => {
        stats.resyncs += 1;
        onResync(body.reason || "resync");
      }),
    );
    source.addEventListener("error", () => {
      onStatus(false);
      if (source.readyState !== EventSource.CLOSED) return; // the browser is retrying
      source = null;
      timer = setTimeout(async () => {
        // A refused token will never work again: let the app send the operator to sign in.
        if (await onRefused()) return;
        open();
      }, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  open();
  return {
    stats,
    close() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
      onStatus(false);
    },
  };
}
