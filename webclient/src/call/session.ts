// One lesson, from the waiting screen to leaving. It lives outside the screen's components
// so the call goes on (minimised) while the person reads their chats.
import { batch, computed, signal } from "@preact/signals";
import { t, tSex } from "../lib/i18n";
import { ProtocolError, type ChatEvent } from "../lib/protocol";
import { connection, onEvent, onPush, online, session as signedIn } from "../lib/state";
import { BoardModel } from "./boardModel";
import { type Device, type MediaProblem, capture, captureScreen, savedDevice } from "./media";
import { CallPeer } from "./peer";
import "./text";
import {
  type BoardOp,
  type CallInfo,
  type CallJoined,
  type CallNotice,
  type CallPeople,
  type Layer,
  type Source,
  type Track,
  isHost,
} from "./types";

export type Phase =
  | "loading"
  | "waiting"
  | "joining"
  | "live"
  | "ended"
  | "left"
  | "removed"
  | "missing"
  | "error";
export type Panel = "chat" | "people" | "rooms" | "settings" | null;

export interface Notice {
  id: number;
  text: string;
  /** Stays until dismissed (a broadcast, a request); others go by themselves. */
  sticky?: boolean;
  action?: { label: string; run: () => void };
}

const LAYERS: Layer[] = ["off", "low", "medium", "high"];
const RETRY_MS = 15_000;
const LAYER_DEBOUNCE_MS = 300;
const NOTICE_MS = 8_000;
const MAX_BOARD_BATCH = 200;

let noticeIds = 0;

/** The server's reason in the person's words where we know it. */
function explain(error: unknown): string {
  if (error instanceof ProtocolError) {
    const known = t(`call.error.${error.code}`);
    return known === `call.error.${error.code}` ? error.message || error.code : known;
  }
  return error instanceof Error ? error.message : String(error);
}

function remembered(name: string, fallback: boolean): boolean {
  const value = localStorage.getItem(`parta.call.${name}`);
  return value === null ? fallback : value === "1";
}

export class CallSession {
  readonly phase = signal<Phase>("loading");
  readonly info = signal<CallInfo | null>(null);
  readonly failure = signal("");
  readonly people = signal<CallPeople | null>(null);
  readonly tracks = signal<Track[]>([]);
  /** Remote tracks whose media is negotiated (ready for an element). */
  readonly received = signal<ReadonlySet<string>>(new Set());
  readonly speaker = signal<number | null>(null);
  /** Who spoke last apart from us: the speaker layout's stage. */
  readonly lastSpeaker = signal<number | null>(null);
  readonly mic = signal(false);
  readonly camera = signal(false);
  readonly screen = signal(false);
  readonly hand = computed(() => this.me.value?.hand != null);
  readonly localVideo = signal<MediaStreamTrack | null>(null);
  readonly problems = signal<Partial<Record<Device, MediaProblem>>>({});
  readonly notices = signal<Notice[]>([]);
  readonly audioBlocked = signal(false);
  readonly layout = signal<"grid" | "speaker">("grid");
  /** A tile key ("p<account>" or a track id) shown on the stage whoever speaks. */
  readonly pinned = signal<string | null>(null);
  readonly panel = signal<Panel>(null);
  readonly boardOpen = signal(false);
  readonly board = new BoardModel();
  readonly me = computed(() =>
    this.people.value?.people.find((p) => p.account_id === signedIn.value?.accountId),
  );
  readonly host = computed(() => isHost(this.me.value));
  readonly room = computed(() => this.me.value?.room ?? 0);
  readonly canScreen = computed(() => {
    const me = this.me.value;
    return isHost(me) || !!me?.can_screen || !!this.people.value?.screen_for_all;
  });

  private peer: CallPeer | null = null;
  private local: Partial<Record<Source, MediaStreamTrack>> = {};
  private audios = new Map<string, HTMLAudioElement>();
  private speakerId = localStorage.getItem("parta.call.speakerDevice") ?? "";
  /** track id → element → the layer that element needs */
  private views = new Map<string, Map<Element, Layer>>();
  private layersSent = new Map<string, Layer>();
  private layerTimer = 0;
  private retryTimer = 0;
  private rejoining = false;
  /** Bumped by every join and ending, so an older join that resumes after an await stops. */
  private attempt = 0;
  private capturing: Promise<void> | null = null;
  private boardQueue: BoardOp[] = [];
  private boardSending = false;
  private stops: (() => void)[] = [];

  constructor(readonly id: number) {}

  // --- the lesson's life ------------------------------------------------------------------

  async start(): Promise<void> {
    let wasOnline = online.value === "open";
    this.stops.push(
      onPush((type, body) => this.push(type, body)),
      onEvent((event) => this.event(event)),
      online.subscribe((state) => {
        // The server forgets a connection's call when it drops: join again on the new one.
        if (state === "open" && !wasOnline) this.resume();
        wasOnline = state === "open";
      }),
    );
    if (online.value === "open") await this.load();
  }

  private resume(): void {
    const phase = this.phase.value;
    if (phase === "live" || phase === "joining") void this.rejoin();
    else if (phase === "loading" || phase === "waiting") void this.load();
  }

  /** ``call.get``: the waiting screen, the lesson, or its end. */
  async load(): Promise<void> {
    let info: CallInfo;
    try {
      info = await connection.request<CallInfo>("call.get", { call_id: this.id });
    } catch (error) {
      if (error instanceof ProtocolError && error.code === "connection_lost") return;
      this.fail(error, "missing");
      return;
    }
    this.info.value = info;
    if (info.state === "live") await this.join();
    else if (info.state === "ended" || info.state === "cancelled") this.finish("ended");
    else this.wait();
  }

  private wait(): void {
    this.phase.value = "waiting";
    clearInterval(this.retryTimer);
    // Lesson cards in the chat tell us when it goes live; this covers a missed one.
    this.retryTimer = window.setInterval(() => {
      if (this.phase.value === "waiting" && online.value === "open") void this.load();
    }, RETRY_MS);
  }

  /** Join (also what the host does to start the lesson). */
  async join(): Promise<void> {
    if (this.phase.value === "joining" || this.phase.value === "live") return;
    const attempt = ++this.attempt;
    clearInterval(this.retryTimer);
    this.phase.value = "joining";
    this.failure.value = "";
    await this.captureAtStart();
    if (attempt !== this.attempt) return;
    let joined: CallJoined;
    try {
      joined = await connection.request<CallJoined>("call.join", { call_id: this.id });
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : "";
      if (code === "connection_lost" || attempt !== this.attempt) return;
      if (code === "lesson_ended") this.finish("ended");
      else if (code === "forbidden") this.finish("removed");
      else {
        this.failure.value = explain(error);
        this.wait();
      }
      return;
    }
    if (attempt !== this.attempt) return; // left, or joined again, meanwhile
    batch(() => {
      this.info.value = joined.call;
      this.people.value = joined.people;
      this.tracks.value = joined.tracks;
      this.received.value = new Set();
      this.board.reset(joined.board ?? []);
      this.board.apply(this.boardQueue); // drawn while the connection was down
      this.phase.value = "live";
    });
    void this.flushBoard();
    this.layersSent.clear();
    this.peer?.close();
    const peer = new CallPeer(
      (sdp, sources, subscriptions) =>
        connection
          .request<{ sdp: string }>("call.offer", { sdp, sources, subscriptions })
          .then((answer) => answer.sdp),
      (received) => this.negotiated(received),
      (error) => this.peerFailed(error),
    );
    this.peer = peer;
    peer.pc.addEventListener("connectionstatechange", () => {
      if (peer === this.peer && peer.pc.connectionState === "failed") void this.rejoin();
    });
    this.sendMedia();
    await peer.start(this.local, joined.tracks);
  }

  private async rejoin(): Promise<void> {
    if (this.rejoining) return;
    this.rejoining = true;
    try {
      this.attempt++;
      this.dropMedia();
      this.phase.value = "loading";
      await this.load();
    } finally {
      this.rejoining = false;
    }
  }

  private peerFailed(error: unknown): void {
    if (error instanceof ProtocolError && error.code === "connection_lost") return; // resumes
    if (error instanceof ProtocolError && error.code === "forbidden" && this.local.screen) {
      // Screen sharing was forbidden meanwhile: offer again without it.
      this.stopScreen();
      return;
    }
    console.warn("negotiation failed", error);
    void this.rejoin();
  }

  async leave(): Promise<void> {
    if (this.phase.value === "live" || this.phase.value === "joining") {
      await connection.request("call.leave").catch(() => undefined);
    }
    this.finish("left");
  }

  /** The end of this session: everything it holds is let go. */
  finish(phase: Phase): void {
    this.attempt++;
    clearInterval(this.retryTimer);
    this.dropMedia();
    for (const track of Object.values(this.local)) track.stop();
    this.local = {};
    batch(() => {
      this.localVideo.value = null;
      this.mic.value = this.camera.value = this.screen.value = false;
      this.phase.value = phase;
      this.panel.value = null;
      this.boardOpen.value = false;
    });
    if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
  }

  dispose(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  private dropMedia(): void {
    this.peer?.close();
    this.peer = null;
    for (const audio of this.audios.values()) audio.srcObject = null;
    this.audios.clear();
    clearTimeout(this.layerTimer);
    this.stopScreenTracks();
    this.received.value = new Set();
  }

  private fail(error: unknown, phase: Phase): void {
    this.failure.value = explain(error);
    this.finish(phase);
  }

  // --- what the server tells us --------------------------------------------------------------

  private push(type: string, body: any): void {
    if (!type.startsWith("call.") || body.call_id !== this.id) return;
    if (this.phase.value !== "live" && type !== "call.notice") return;
    switch (type) {
      case "call.tracks": {
        const screens = (tracks: Track[]) =>
          tracks.filter((track) => track.source === "screen").map((track) => track.track_id);
        const before = new Set(screens(this.tracks.value));
        // Someone began to show their screen: it takes the stage.
        if (screens(body.tracks).some((id) => !before.has(id))) this.layout.value = "speaker";
        this.tracks.value = body.tracks;
        void this.peer?.receive(body.tracks);
        break;
      }
      case "call.speaker":
        batch(() => {
          this.speaker.value = body.account_id;
          if (body.account_id !== this.myId()) this.lastSpeaker.value = body.account_id;
        });
        break;
      case "call.state":
        this.people.value = body as CallPeople;
        if (this.screen.value && !this.canScreen.value) this.stopScreen();
        break;
      case "call.board":
        this.board.apply(body.ops);
        break;
      case "call.reconnect":
        void this.rejoin();
        break;
      case "call.notice":
        this.notice(body as CallNotice);
        break;
    }
  }

  /** A lesson card changed in the lesson's chat: it went live or ended. */
  private event(event: ChatEvent & { lesson?: CallInfo }): void {
    const lesson = event.lesson;
    if (!lesson || lesson.id !== this.id) return;
    this.info.value = lesson;
    if (lesson.state === "live" && this.phase.value === "waiting") void this.join();
    if ((lesson.state === "ended" || lesson.state === "cancelled") && this.phase.value !== "left") this.finish("ended");
  }

  private notice(notice: CallNotice): void {
    const who = this.nameOf(notice.by ?? 0);
    const sex = this.people.value?.people.find((p) => p.account_id === notice.by)?.sex;
    switch (notice.kind) {
      case "ask_unmute":
        if (this.mic.value) return;
        this.say(t("call.notice.ask_unmute", { name: who }), true, {
          label: t("call.mic.turn_on"),
          run: () => void this.setMic(true),
        });
        break;
      case "mute":
        void this.setMic(false);
        this.say(tSex("call.notice.mute", sex, { name: who }));
        break;
      case "camera_off":
        void this.setCamera(false);
        this.say(tSex("call.notice.camera_off", sex, { name: who }));
        break;
      case "stop_screen":
        this.stopScreen();
        this.say(tSex("call.notice.stop_screen", sex, { name: who }));
        break;
      case "removed":
        this.finish("removed");
        break;
      case "ended":
        this.finish("ended");
        break;
      case "broadcast":
        this.say(t("call.notice.broadcast", { name: who, text: notice.text ?? "" }), true);
        break;
      case "help": {
        const room = notice.room ?? 0;
        this.say(t("call.notice.help", { name: who, room: this.roomName(room) }), true, {
          label: t("call.rooms.visit"),
          run: () => void this.act("call.rooms.move", { account_id: this.myId(), room }),
        });
        break;
      }
    }
  }

  say(text: string, sticky = false, action?: Notice["action"]): void {
    const notice: Notice = { id: ++noticeIds, text, sticky, action };
    this.notices.value = [...this.notices.value, notice];
    if (!sticky) setTimeout(() => this.dismiss(notice.id), NOTICE_MS);
  }

  dismiss(id: number): void {
    this.notices.value = this.notices.value.filter((n) => n.id !== id);
  }

  myId(): number {
    return signedIn.value?.accountId ?? 0;
  }

  nameOf(accountId: number): string {
    const person = this.people.value?.people.find((p) => p.account_id === accountId);
    return person?.name ?? t("call.someone");
  }

  roomName(index: number): string {
    if (index === 0) return t("call.rooms.main");
    return this.people.value?.rooms?.find((r) => r.index === index)?.name ?? `${index}`;
  }

  /** A request whose failure is worth a line on the screen, not a broken call. */
  async act(type: string, body: object = {}): Promise<boolean> {
    try {
      await connection.request(type, body);
      return true;
    } catch (error) {
      this.say(t("call.failed", { reason: explain(error) }));
      return false;
    }
  }

  // --- own microphone, camera, screen --------------------------------------------------------

  /** One prompt at a time, however many joins wait for it. */
  private captureAtStart(): Promise<void> {
    this.capturing ??= this.captureOnce().finally(() => {
      this.capturing = null;
    });
    return this.capturing;
  }

  private async captureOnce(): Promise<void> {
    const want: Device[] = [];
    if (!this.local.mic) want.push("mic");
    const cameraOn = remembered("camera", true);
    if (!this.local.camera && cameraOn) want.push("camera");
    if (!want.length) return;
    const got = await capture(want);
    this.report(got.problems);
    batch(() => {
      if (got.mic) {
        // Teachers start heard, students muted, unless they chose otherwise last time.
        got.mic.enabled = remembered("mic", this.info.value?.host_id === this.myId());
        this.local.mic = got.mic;
        this.mic.value = got.mic.enabled;
      }
      if (got.camera) {
        this.local.camera = got.camera;
        this.camera.value = true;
        this.localVideo.value = got.camera;
      }
    });
  }

  /** Why a device did not start: kept for the settings, said once on the screen. */
  private report(problems: Partial<Record<Device, MediaProblem>>): void {
    this.problems.value = { ...this.problems.value, ...problems };
    for (const [device, problem] of Object.entries(problems)) {
      this.say(t(`call.problem.${problem}`, { device: t(`call.device.${device}`) }), true);
    }
  }

  private sendMedia(): void {
    if (this.phase.value !== "live") return;
    void connection
      .request("call.media", { mic: this.mic.value, camera: this.camera.value })
      .catch(() => undefined);
  }

  async setMic(on: boolean): Promise<void> {
    localStorage.setItem("parta.call.mic", on ? "1" : "0");
    if (on && !this.local.mic) {
      const got = await capture(["mic"]);
      this.report(got.problems);
      if (!got.mic) return;
      this.problems.value = { ...this.problems.value, mic: undefined };
      this.local.mic = got.mic;
      void this.peer?.send("mic", got.mic);
    }
    if (this.local.mic) this.local.mic.enabled = on;
    this.mic.value = on && !!this.local.mic;
    this.sendMedia();
  }

  async setCamera(on: boolean): Promise<void> {
    localStorage.setItem("parta.call.camera", on ? "1" : "0");
    if (on && !this.local.camera) {
      const got = await capture(["camera"]);
      this.report(got.problems);
      if (!got.camera) return;
      this.problems.value = { ...this.problems.value, camera: undefined };
      this.local.camera = got.camera;
      void this.peer?.send("camera", got.camera);
    } else if (!on && this.local.camera) {
      // Stopped, not just disabled: the camera's light goes out.
      this.local.camera.stop();
      delete this.local.camera;
      void this.peer?.send("camera", null);
    }
    batch(() => {
      this.camera.value = !!this.local.camera;
      this.localVideo.value = this.local.camera ?? null;
    });
    this.sendMedia();
  }

  /** Settings: another microphone or camera, without renegotiating. */
  async useDevice(kind: Device, track: MediaStreamTrack): Promise<void> {
    const old = this.local[kind];
    this.local[kind] = track;
    if (kind === "mic") track.enabled = this.mic.value;
    await this.peer?.send(kind, track);
    old?.stop();
    if (kind === "camera") {
      this.localVideo.value = track;
      this.camera.value = true;
      this.sendMedia();
    }
  }

  /** The device in use (settings' current choice). */
  deviceOf(kind: Device | "speaker"): string {
    if (kind === "speaker") return this.speakerId;
    return this.local[kind]?.getSettings().deviceId ?? savedDevice(kind) ?? "";
  }

  useSpeaker(deviceId: string): void {
    this.speakerId = deviceId;
    localStorage.setItem("parta.call.speakerDevice", deviceId);
    for (const audio of this.audios.values()) void this.sink(audio);
  }

  private async sink(audio: HTMLAudioElement): Promise<void> {
    const target = audio as HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> };
    if (this.speakerId && target.setSinkId) {
      await target.setSinkId(this.speakerId).catch(() => undefined);
    }
  }

  async startScreen(): Promise<void> {
    if (!this.canScreen.value || this.screen.value) return;
    let stream: MediaStream | null;
    try {
      stream = await captureScreen();
    } catch {
      this.say(t("call.screen.failed"));
      return;
    }
    if (!stream) return;
    const [video] = stream.getVideoTracks();
    const [audio] = stream.getAudioTracks();
    video.contentHint = "detail";
    // The browser's own "stop sharing" bar ends the track.
    video.addEventListener("ended", () => this.stopScreen());
    this.local.screen = video;
    if (audio) this.local["screen-audio"] = audio;
    this.screen.value = true;
    await this.peer?.send("screen", video);
    if (audio) await this.peer?.send("screen-audio", audio);
  }

  stopScreen(): void {
    if (!this.local.screen) return;
    this.stopScreenTracks();
    void this.peer?.send("screen", null);
    void this.peer?.send("screen-audio", null);
  }

  private stopScreenTracks(): void {
    this.local.screen?.stop();
    this.local["screen-audio"]?.stop();
    delete this.local.screen;
    delete this.local["screen-audio"];
    this.screen.value = false;
  }

  // --- what we receive ---------------------------------------------------------------------

  stream(trackId: string): MediaStream | undefined {
    return this.peer?.stream(trackId);
  }

  inbound(trackId: string): Promise<RTCInboundRtpStreamStats | undefined> {
    return this.peer?.inbound(trackId) ?? Promise.resolve(undefined);
  }

  private negotiated(received: ReadonlySet<string>): void {
    for (const trackId of this.layersSent.keys()) {
      if (!received.has(trackId)) this.layersSent.delete(trackId);
    }
    for (const [trackId, audio] of this.audios) {
      if (received.has(trackId)) continue;
      audio.srcObject = null;
      this.audios.delete(trackId);
    }
    for (const track of this.tracks.value) {
      if (!received.has(track.track_id)) continue;
      if (track.kind === "audio" && !this.audios.has(track.track_id)) this.play(track.track_id);
      // A new consumer starts at the top layer: say what this screen needs.
      if (track.kind === "video" && !this.layersSent.has(track.track_id)) {
        this.layersSent.set(track.track_id, "high");
      }
    }
    this.received.value = received;
    this.scheduleLayers();
  }

  private play(trackId: string): void {
    const stream = this.peer?.stream(trackId);
    if (!stream) return;
    // Detached elements: the sound goes on whatever the screen shows.
    const audio = new Audio();
    audio.srcObject = stream;
    this.audios.set(trackId, audio);
    void this.sink(audio);
    audio.play().catch(() => {
      this.audioBlocked.value = true;
    });
  }

  /** After a click: browsers that refused to play sound before a gesture allow it now. */
  unblockAudio(): void {
    this.audioBlocked.value = false;
    for (const audio of this.audios.values()) {
      audio.play().catch(() => {
        this.audioBlocked.value = true;
      });
    }
  }

  /** A tile shows ``trackId`` in ``element`` needing ``layer`` (null: not any more). */
  view(trackId: string, element: Element, layer: Layer | null): void {
    let views = this.views.get(trackId);
    if (!views) {
      if (layer === null) return;
      views = new Map();
      this.views.set(trackId, views);
    }
    if (layer === null) views.delete(element);
    else views.set(element, layer);
    if (!views.size) this.views.delete(trackId);
    this.scheduleLayers();
  }

  private scheduleLayers(): void {
    clearTimeout(this.layerTimer);
    this.layerTimer = window.setTimeout(() => this.sendLayers(), LAYER_DEBOUNCE_MS);
  }

  private sendLayers(): void {
    for (const [trackId, sent] of this.layersSent) {
      let best = 0;
      for (const layer of this.views.get(trackId)?.values() ?? []) {
        best = Math.max(best, LAYERS.indexOf(layer));
      }
      const layer = LAYERS[best];
      if (layer === sent) continue;
      this.layersSent.set(trackId, layer);
      void connection.request("call.layer", { track_id: trackId, layer }).catch(() => {
        this.layersSent.delete(trackId); // tried again after the next answer
      });
    }
  }

  // --- the whiteboard ----------------------------------------------------------------------

  /** Draw: shown at once, sent in batches (one request in flight at a time). */
  draw(ops: BoardOp[]): void {
    this.board.apply(ops);
    this.boardQueue.push(...ops);
    void this.flushBoard();
  }

  private async flushBoard(): Promise<void> {
    if (this.boardSending) return;
    this.boardSending = true;
    try {
      while (this.boardQueue.length && this.phase.value === "live") {
        const ops = this.boardQueue.slice(0, MAX_BOARD_BATCH);
        try {
          await connection.request("call.board", { ops });
        } catch (error) {
          if (error instanceof ProtocolError && error.code === "connection_lost") return;
          this.say(t("call.failed", { reason: explain(error) }));
        }
        this.boardQueue.splice(0, ops.length);
      }
    } finally {
      this.boardSending = false;
    }
  }
}

/** The lesson this tab is in (or was last in). */
export const current = signal<CallSession | null>(null);

/** The session for ``id``: the one already running, or a new one (leaving any other). */
export function openCall(id: number): CallSession {
  const running = current.value;
  if (running?.id === id) return running;
  if (running) {
    void running.leave();
    running.dispose();
  }
  const session = new CallSession(id);
  current.value = session;
  void session.start();
  return session;
}
