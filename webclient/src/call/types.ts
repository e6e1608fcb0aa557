// The lesson messages of protocol/calls.py as the client sees them. Bodies omit fields
// that hold their default, so optional fields here are read through the helpers below.
export type CallState = "scheduled" | "published" | "live" | "ended" | "cancelled";
export type CallRole = "host" | "cohost" | "member";
export type Source = "mic" | "camera" | "screen" | "screen-audio";
export type Layer = "off" | "low" | "medium" | "high";

export const MAX_ROOMS = 50;

export interface CallInfo {
  id: number;
  chat_id: number;
  title: string;
  starts_at: number;
  ends_at: number;
  state: CallState;
  host_id?: number | null;
  recording?: boolean;
}

export interface Track {
  track_id: string;
  account_id: number;
  kind: "audio" | "video";
  source: Source;
}

export interface CallPerson {
  account_id: number;
  name: string;
  role: CallRole;
  room?: number;
  mic?: boolean;
  camera?: boolean;
  screen?: boolean;
  hand?: number | null;
  can_screen?: boolean;
  sex?: "male" | "female" | null;
}

export interface CallPeople {
  call_id: number;
  people: CallPerson[];
  rooms?: { index: number; name: string }[];
  rooms_close_at?: number | null;
  recording?: boolean;
  screen_for_all?: boolean;
}

export type BoardKind = "stroke" | "line" | "rect" | "ellipse" | "text" | "erase" | "clear";

export interface BoardOp {
  id: string;
  kind: BoardKind;
  points?: number[];
  color?: string;
  width?: number;
  text?: string | null;
  target?: string | null;
  account_id?: number;
}

export interface CallJoined {
  call: CallInfo;
  peer_id: string;
  tracks: Track[];
  people: CallPeople;
  board?: BoardOp[];
}

export type NoticeKind =
  | "ask_unmute"
  | "mute"
  | "camera_off"
  | "stop_screen"
  | "removed"
  | "broadcast"
  | "help"
  | "ended";

export interface CallNotice {
  call_id: number;
  kind: NoticeKind;
  by?: number;
  text?: string | null;
  room?: number | null;
}

export const isHost = (person: CallPerson | undefined): boolean =>
  person?.role === "host" || person?.role === "cohost";
