// Every screen of the client, by path. The first route is the home screen.
import type { JSX } from "preact";
import { CallRoute } from "./call/Screen";
import { Chat } from "./pages/Chat";
import { ChatInfo } from "./pages/ChatInfo";
import { ChatList } from "./pages/ChatList";
import { Join } from "./pages/Join";
import { LinkPending } from "./pages/LinkPending";
import { Links } from "./pages/Links";
import { NewChat } from "./pages/NewChat";
import { Search } from "./pages/Search";

export interface Route {
  path: string;
  /** Shown without signing in (it signs in itself, e.g. the link page). */
  public?: boolean;
  render: (params: Record<string, string>) => JSX.Element;
}

export const routes: Route[] = [
  { path: "/", render: () => <ChatList /> },
  // Keyed: another chat is a fresh screen (scroll, reply, edit), not this one reused.
  { path: "/chat/:id", render: (p) => <Chat key={p.id} chatId={Number(p.id)} /> },
  { path: "/chat/:id/info", render: (p) => <ChatInfo key={p.id} chatId={Number(p.id)} /> },
  { path: "/new", render: () => <NewChat /> },
  { path: "/join/:token", render: (p) => <Join token={p.token} /> },
  { path: "/search", render: () => <Search /> },
  { path: "/links", render: () => <Links /> },
  { path: "/call/:id", render: (p) => <CallRoute id={p.id} /> },
  { path: "/link/:pending", public: true, render: (p) => <LinkPending pendingId={p.pending} /> },
];
