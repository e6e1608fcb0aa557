// A link that moves within the client (history routing) unless opened in a new tab.
import type { JSX } from "preact";
import { navigate } from "../../lib/router";

export function Link(props: JSX.HTMLAttributes<HTMLAnchorElement> & { href: string }) {
  return (
    <a
      {...props}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    />
  );
}
