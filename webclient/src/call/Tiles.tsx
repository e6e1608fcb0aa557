// The people of the lesson as tiles: a grid, or a stage (speaker, screen, pinned tile or
// the whiteboard) with a strip of thumbnails.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { t } from "../lib/i18n";
import { Board } from "./Board";
import { watch } from "./layers";
import type { CallSession } from "./session";
import type { CallPerson } from "./types";
import { Icon, initials } from "./ui";

export interface TileInfo {
  /** "p<account>" for a person, the track id for a screen share, "screen" for ours. */
  key: string;
  accountId: number;
  name: string;
  person?: CallPerson;
  /** The remote video shown, once it may be. */
  video?: string;
  screen?: boolean;
  local?: boolean;
}

const MIN_TILE_PX = 150;
const GAP_PX = 8; // .tiles.grid gap

export function tilesOf(session: CallSession): TileInfo[] {
  const me = session.myId();
  const room = session.room.value;
  const tracks = session.tracks.value;
  const tiles: TileInfo[] = [];
  for (const person of session.people.value?.people ?? []) {
    if ((person.room ?? 0) !== room) continue;
    const camera = tracks.find((t) => t.account_id === person.account_id && t.source === "camera");
    tiles.push({
      key: `p${person.account_id}`,
      accountId: person.account_id,
      name: person.name,
      person,
      video: person.camera ? camera?.track_id : undefined,
      local: person.account_id === me,
    });
  }
  // Teachers first, then the others as the server lists them.
  tiles.sort((a, b) => Number(b.person?.role !== "member") - Number(a.person?.role !== "member"));
  for (const track of tracks) {
    if (track.source !== "screen") continue;
    tiles.unshift({
      key: track.track_id,
      accountId: track.account_id,
      name: session.nameOf(track.account_id),
      video: track.track_id,
      screen: true,
    });
  }
  if (session.screen.value) {
    const name = session.nameOf(me);
    tiles.push({ key: "screen", accountId: me, name, screen: true, local: true });
  }
  return tiles;
}

/** The stage of the speaker layout: the pinned tile, a screen, who spoke last, a teacher. */
export function stageOf(session: CallSession, tiles: TileInfo[]): TileInfo | undefined {
  const pinned = tiles.find((tile) => tile.key === session.pinned.value);
  if (pinned) return pinned;
  const remote = tiles.filter((tile) => !tile.local);
  const screen = remote.find((tile) => tile.screen);
  if (screen) return screen;
  const spoke = remote.find((tile) => tile.accountId === session.lastSpeaker.value && !tile.screen);
  return spoke ?? remote[0] ?? tiles[0];
}

export function Tile({ session, tile }: { session: CallSession; tile: TileInfo }) {
  const figure = useRef<HTMLElement>(null);
  const video = useRef<HTMLVideoElement>(null);
  const localTrack = tile.local && !tile.screen ? session.localVideo.value : null;
  const received = session.received.value;
  const localStream = useMemo(
    () => (localTrack ? new MediaStream([localTrack]) : null),
    [localTrack],
  );
  const remote = tile.video && received.has(tile.video) ? session.stream(tile.video) : undefined;
  const stream = localStream ?? remote;

  useEffect(() => {
    const element = video.current;
    if (!element) return;
    if (element.srcObject !== (stream ?? null)) element.srcObject = stream ?? null;
    if (stream && element.paused) element.play().catch((error) => console.warn("video", error));
  }, [stream]);
  useEffect(() => {
    if (!tile.video || !figure.current) return;
    return watch(figure.current, session, tile.video);
  }, [tile.video, session]);

  const person = tile.person;
  const speaking = !tile.screen && session.speaker.value === tile.accountId;
  const pinned = session.pinned.value === tile.key;
  const label = tile.screen
    ? t("call.tile.screen", { name: tile.name })
    : tile.local
      ? t("call.tile.me", { name: tile.name })
      : tile.name;
  return (
    <figure
      ref={figure}
      class={`tile${speaking ? " speaking" : ""}${tile.screen ? " is-screen" : ""}`}
      data-account={tile.accountId}
      data-tile={tile.key}
    >
      {stream ? (
        <video ref={video} autoplay playsInline muted class={tile.local ? "mirror" : undefined} />
      ) : tile.screen && tile.local ? (
        <div class="tile-note">
          <p>{t("call.screen.yours")}</p>
          <button type="button" class="danger" onClick={() => session.stopScreen()}>
            {t("call.screen.stop")}
          </button>
        </div>
      ) : (
        <div class="call-avatar" aria-hidden="true">
          {initials(tile.name)}
        </div>
      )}
      <figcaption>
        {person?.hand != null && (
          <span class="call-badge hand" title={t("call.hand.up")}>
            <Icon name="hand" /> {person.hand}
          </span>
        )}
        {person && !person.mic && (
          <span class="call-badge" title={t("call.mic.off")}>
            <Icon name="mic" off />
            <span class="visually-hidden">{t("call.mic.off")}</span>
          </span>
        )}
        <span class="tile-name">{label}</span>
        {person && person.role !== "member" && (
          <span class="call-badge call-role">{t(`call.role.${person.role}`)}</span>
        )}
      </figcaption>
      <button
        type="button"
        class="icon-button pin"
        aria-pressed={pinned}
        aria-label={t(pinned ? "call.unpin" : "call.pin", { name: tile.name })}
        onClick={() => {
          session.pinned.value = pinned ? null : tile.key;
          if (!pinned) session.layout.value = "speaker";
        }}
      >
        <Icon name="pin" />
      </button>
    </figure>
  );
}

/** The columns and tile width that make the biggest 16:9 tiles fit in width × height;
 * below a legible size the grid scrolls instead. */
function fit(count: number, width: number, height: number): { cols: number; tile: number } {
  let best = { cols: 1, tile: 0 };
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const tile = Math.min(
      (width - (cols - 1) * GAP_PX) / cols,
      ((height - (rows - 1) * GAP_PX) / rows) * (16 / 9),
    );
    if (tile > best.tile) best = { cols, tile };
  }
  if (best.tile < MIN_TILE_PX) {
    const cols = Math.max(1, Math.floor((width + GAP_PX) / (MIN_TILE_PX + GAP_PX)));
    best = { cols, tile: (width - (cols - 1) * GAP_PX) / cols };
  }
  return { cols: best.cols, tile: Math.floor(best.tile) };
}

export function Stage({ session }: { session: CallSession }) {
  const box = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 800, height: 450 });
  const board = session.boardOpen.value;
  const grid = session.layout.value === "grid" && !board;
  useEffect(() => {
    const observer = new ResizeObserver(([entry]) =>
      setSize({ width: entry.contentRect.width, height: entry.contentRect.height }),
    );
    observer.observe(box.current!);
    return () => observer.disconnect();
  }, [grid]);
  const tiles = tilesOf(session);
  if (grid) {
    const { cols, tile } = fit(tiles.length, size.width, size.height);
    return (
      <div
        class="tiles grid"
        ref={box}
        style={{ gridTemplateColumns: `repeat(${cols}, ${tile}px)` }}
      >
        {tiles.map((tile) => (
          <Tile key={tile.key} session={session} tile={tile} />
        ))}
      </div>
    );
  }
  const stage = board ? undefined : stageOf(session, tiles);
  return (
    <div class="tiles speaker-layout" ref={box}>
      <div class="stage">
        {board ? (
          <Board session={session} />
        ) : (
          stage && <Tile key={stage.key} session={session} tile={stage} />
        )}
      </div>
      <div class="strip" aria-label={t("call.strip")}>
        {tiles
          .filter((tile) => tile !== stage)
          .map((tile) => (
            <Tile key={tile.key} session={session} tile={tile} />
          ))}
      </div>
    </div>
  );
}
