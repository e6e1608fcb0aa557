// One RTCPeerConnection to the SFU. The client always offers and the SFU answers (no
// glare): our own tracks go out on sendonly transceivers (the camera as three simulcast
// layers), every remote track we are told about comes in on a recvonly transceiver.
// When either side changes, we offer again; offers never overlap.
import type { Source, Track } from "./types";

type Signal = (
  sdp: string,
  sources: Record<string, Source>,
  subscriptions: Record<string, string>,
) => Promise<string>;

// Chromium's simulcast as the SFU expects it (docs/sfu.md): rid q, h, f.
const CAMERA_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 200_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 700_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];
// A screen share stops being a producer when it ends; the others keep theirs.
const COMES_AND_GOES: ReadonlySet<Source> = new Set(["screen", "screen-audio"]);

export class CallPeer {
  readonly pc = new RTCPeerConnection({ iceServers: [] });
  private readonly sending = new Map<Source, RTCRtpTransceiver>();
  /** remote track id → the transceiver receiving it */
  private readonly receiving = new Map<string, RTCRtpTransceiver>();
  private readonly streams = new Map<string, MediaStream>();
  private wanted: Track[] = [];
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly signal: Signal,
    /** After each answer: the tracks received now. */
    private readonly negotiated: (received: ReadonlySet<string>) => void,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** The first offer: our tracks and the remote ones we were told about at joining. */
  start(local: Partial<Record<Source, MediaStreamTrack>>, tracks: Track[]): Promise<void> {
    for (const [source, track] of Object.entries(local)) this.add(source as Source, track);
    return this.receive(tracks);
  }

  /** Send ``track`` as ``source`` (null stops sending it). */
  async send(source: Source, track: MediaStreamTrack | null): Promise<void> {
    const transceiver = this.sending.get(source);
    if (!transceiver) {
      if (!track) return;
      this.add(source, track);
      return this.negotiate();
    }
    await transceiver.sender.replaceTrack(track);
    if (!COMES_AND_GOES.has(source)) return;
    const direction = track ? "sendonly" : "inactive";
    if (transceiver.direction === direction) return;
    transceiver.direction = direction;
    return this.negotiate();
  }

  private add(source: Source, track: MediaStreamTrack): void {
    const transceiver = this.pc.addTransceiver(track, {
      direction: "sendonly",
      sendEncodings: source === "camera" ? CAMERA_LAYERS : undefined,
    });
    this.sending.set(source, transceiver);
  }

  /** The remote tracks to receive (the server's ``call.tracks``). */
  receive(tracks: Track[]): Promise<void> {
    this.wanted = tracks;
    return this.negotiate();
  }

  /** A remote track as a stream for a video or audio element, once it is received. */
  stream(trackId: string): MediaStream | undefined {
    let stream = this.streams.get(trackId);
    const transceiver = this.receiving.get(trackId);
    if (!stream && transceiver) {
      stream = new MediaStream([transceiver.receiver.track]);
      this.streams.set(trackId, stream);
    }
    return stream;
  }

  /** Inbound video statistics of one track (tests and the connection hint). */
  async inbound(trackId: string): Promise<RTCInboundRtpStreamStats | undefined> {
    const transceiver = this.receiving.get(trackId);
    if (!transceiver) return undefined;
    const stats = await transceiver.receiver.getStats();
    let found: RTCInboundRtpStreamStats | undefined;
    stats.forEach((report) => {
      if (report.type === "inbound-rtp") found = report as RTCInboundRtpStreamStats;
    });
    return found;
  }

  close(): void {
    this.closed = true;
    this.pc.close();
  }

  negotiate(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.exchange();
        } while (this.again && !this.closed);
      } catch (error) {
        if (this.closed) return;
        // Back to the last agreed state, so the next offer starts clean.
        if (this.pc.signalingState === "have-local-offer") {
          await this.pc.setLocalDescription({ type: "rollback" }).catch(() => undefined);
        }
        this.failed(error);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async exchange(): Promise<void> {
    this.assign();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const sources: Record<string, Source> = {};
    for (const [source, transceiver] of this.sending) {
      const mid = transceiver.mid;
      if (mid && transceiver.direction === "sendonly") sources[mid] = source;
    }
    const subscriptions: Record<string, string> = {};
    for (const [trackId, transceiver] of this.receiving) {
      if (transceiver.mid) subscriptions[transceiver.mid] = trackId;
    }
    const sdp = await this.signal(this.pc.localDescription!.sdp, sources, subscriptions);
    if (this.closed) return;
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    this.negotiated(new Set(this.receiving.keys()));
  }

  /** Receive each remote track on a section of its own. A section is never given to another
   * track: Chromium decodes what comes back on a section that went inactive but shows none
   * of it, so a track that went away has its section stopped (the next offer rejects it). */
  private assign(): void {
    const wanted = new Map(this.wanted.map((track) => [track.track_id, track]));
    for (const [trackId, transceiver] of this.receiving) {
      if (wanted.has(trackId)) continue;
      transceiver.stop();
      this.receiving.delete(trackId);
      this.streams.delete(trackId);
    }
    for (const track of wanted.values()) {
      if (this.receiving.has(track.track_id)) continue;
      const transceiver = this.pc.addTransceiver(track.kind, { direction: "recvonly" });
      this.receiving.set(track.track_id, transceiver);
    }
  }
}
