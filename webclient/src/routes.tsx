// Every screen of the client, by path. The first route is the home screen.
import type { JSX } from "preact";
import { t } from "./lib/i18n";

export interface Route {
  path: string;
  /** Shown without signing in (it signs in itself, e.g. the link page). */
  public?: boolean;
  render: (params: Record<string, string>) => JSX.Element;
}

export const routes: Route[] = [
  { path: "/", render: () => <p>{t("nav.chats")}</p> },
];
