// Camera, microphone and screen: asking the browser, and telling people why it said no.

export type Device = "mic" | "camera";

/** Why a device is not available, as a phrase key (see text.ts). */
export type MediaProblem = "denied" | "missing" | "busy" | "insecure" | "failed";

const KEYS = { mic: "micDevice", camera: "cameraDevice" } as const;

export function savedDevice(kind: Device): string | null {
  return localStorage.getItem(`parta.call.${KEYS[kind]}`);
}

export function saveDevice(kind: Device, deviceId: string): void {
  localStorage.setItem(`parta.call.${KEYS[kind]}`, deviceId);
}

function constraints(kind: Device, deviceId: string | null): MediaTrackConstraints {
  const device = deviceId ? { deviceId: { ideal: deviceId } } : {};
  return kind === "camera"
    ? { ...device, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { ...device, echoCancellation: true, noiseSuppression: true, autoGainControl: true };
}

export function problemOf(error: unknown): MediaProblem {
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "failed";
}

export interface Captured {
  mic?: MediaStreamTrack;
  camera?: MediaStreamTrack;
  problems: Partial<Record<Device, MediaProblem>>;
}

/** Ask for what is wanted in one prompt; if that fails, each device alone, so a missing
 * camera does not cost the microphone. */
export async function capture(want: Device[]): Promise<Captured> {
  const result: Captured = { problems: {} };
  if (!want.length) return result;
  if (!navigator.mediaDevices?.getUserMedia) {
    for (const kind of want) result.problems[kind] = "insecure";
    return result;
  }
  const ask = (kinds: Device[]) =>
    navigator.mediaDevices.getUserMedia({
      audio: kinds.includes("mic") && constraints("mic", savedDevice("mic")),
      video: kinds.includes("camera") && constraints("camera", savedDevice("camera")),
    });
  try {
    const stream = await ask(want);
    result.mic = stream.getAudioTracks()[0];
    result.camera = stream.getVideoTracks()[0];
    return result;
  } catch (error) {
    if (want.length === 1) {
      result.problems[want[0]] = problemOf(error);
      return result;
    }
  }
  for (const kind of want) {
    const single = await capture([kind]);
    Object.assign(result.problems, single.problems);
    if (single[kind]) result[kind] = single[kind];
  }
  return result;
}

/** A track from one chosen device (settings). */
export async function captureDevice(kind: Device, deviceId: string): Promise<MediaStreamTrack> {
  const stream = await navigator.mediaDevices.getUserMedia(
    kind === "mic"
      ? { audio: { ...constraints("mic", null), deviceId: { exact: deviceId } } }
      : { video: { ...constraints("camera", null), deviceId: { exact: deviceId } } },
  );
  return kind === "mic" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
}

/** The screen (and its sound when the browser offers it); null when the person cancelled. */
export async function captureScreen(): Promise<MediaStream | null> {
  try {
    return await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: true,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "NotAllowedError") return null;
    throw error;
  }
}

export async function listDevices(): Promise<MediaDeviceInfo[]> {
  if (!navigator.mediaDevices?.enumerateDevices) return [];
  return navigator.mediaDevices.enumerateDevices();
}
