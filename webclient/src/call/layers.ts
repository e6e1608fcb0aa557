// Which simulcast layer a remote video needs: none when it cannot be seen, the lowest for a
// thumbnail, more for a bigger tile. Two observers serve every tile.
import type { CallSession } from "./session";
import type { Layer } from "./types";

const LOW_BELOW_PX = 200;
const MEDIUM_BELOW_PX = 420;

interface Watched {
  session: CallSession;
  trackId: string;
  visible: boolean;
  height: number;
}

const watched = new Map<Element, Watched>();

function layerOf(entry: Watched): Layer {
  if (!entry.visible || document.hidden) return "off";
  if (entry.height < LOW_BELOW_PX) return "low";
  return entry.height < MEDIUM_BELOW_PX ? "medium" : "high";
}

function update(element: Element): void {
  const entry = watched.get(element);
  if (entry) entry.session.view(entry.trackId, element, layerOf(entry));
}

const intersection = new IntersectionObserver((entries) => {
  for (const change of entries) {
    const entry = watched.get(change.target);
    if (!entry) continue;
    entry.visible = change.isIntersecting;
    update(change.target);
  }
});

const resize = new ResizeObserver((entries) => {
  for (const change of entries) {
    const entry = watched.get(change.target);
    if (!entry) continue;
    entry.height = change.contentRect.height;
    update(change.target);
  }
});

document.addEventListener("visibilitychange", () => {
  for (const element of watched.keys()) update(element);
});

/** Keep the layer of ``trackId`` in step with ``element``; returns the way to stop. */
export function watch(element: Element, session: CallSession, trackId: string): () => void {
  watched.set(element, { session, trackId, visible: false, height: 0 });
  intersection.observe(element);
  resize.observe(element);
  return () => {
    intersection.unobserve(element);
    resize.unobserve(element);
    watched.delete(element);
    session.view(trackId, element, null);
  };
}
