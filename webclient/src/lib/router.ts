// History-based routing: the server answers every client path with index.html.
import { signal } from "@preact/signals";

export const path = signal(location.pathname + location.search);

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  path.value = location.pathname + location.search;
}

addEventListener("popstate", () => {
  path.value = location.pathname + location.search;
});

/** Match "/chat/:id" against the current path: the parameters, or null. */
export function match(pattern: string, current = path.value): Record<string, string> | null {
  const [pathname] = current.split("?");
  const want = pattern.split("/");
  const have = pathname.split("/");
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}

export function query(name: string): string | null {
  return new URLSearchParams(path.value.split("?")[1] ?? "").get(name);
}
