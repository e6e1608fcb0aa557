// Which microphone, camera and speakers the lesson uses; why a device is not working.
import { useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n";
import { type Device, captureDevice, listDevices, problemOf, saveDevice } from "./media";
import type { CallSession } from "./session";

const KINDS: [Device | "speaker", MediaDeviceKind][] = [
  ["mic", "audioinput"],
  ["camera", "videoinput"],
  ["speaker", "audiooutput"],
];

export function SettingsPanel({ session }: { session: CallSession }) {
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    const load = () => void listDevices().then(setDevices);
    load();
    navigator.mediaDevices?.addEventListener("devicechange", load);
    return () => navigator.mediaDevices?.removeEventListener("devicechange", load);
  }, []);
  const problems = session.problems.value;
  const choose = async (kind: Device | "speaker", deviceId: string) => {
    setError("");
    if (kind === "speaker") return session.useSpeaker(deviceId);
    try {
      const track = await captureDevice(kind, deviceId);
      saveDevice(kind, deviceId);
      await session.useDevice(kind, track);
    } catch (failure) {
      setError(t(`call.problem.${problemOf(failure)}`, { device: t(`call.device.${kind}`) }));
    }
  };
  const canChooseSpeaker = "setSinkId" in HTMLMediaElement.prototype;
  return (
    <div class="call-settings">
      {KINDS.map(([kind, deviceKind]) => {
        const options = devices.filter((d) => d.kind === deviceKind && d.deviceId);
        if (kind === "speaker" && !canChooseSpeaker) return null;
        const problem = kind !== "speaker" && problems[kind];
        const current = session.deviceOf(kind);
        // The browser's default device has no saved choice behind it: show the first.
        const known = options.some((d) => d.deviceId === current);
        const selected = known ? current : options[0]?.deviceId;
        return (
          <div key={kind}>
            <label>
              {t(`call.device.${kind}`)}
              <select
                value={selected}
                disabled={!options.length}
                onChange={(e) => void choose(kind, e.currentTarget.value)}
              >
                {!options.length && <option>{t("call.device.none")}</option>}
                {options.map((device, index) => (
                  <option key={device.deviceId} value={device.deviceId}>
                    {device.label || t(`call.device.${kind}`) + ` ${index + 1}`}
                  </option>
                ))}
              </select>
            </label>
            {problem && (
              <p class="error">
                {t(`call.problem.${problem}`, { device: t(`call.device.${kind}`) })}
              </p>
            )}
          </div>
        );
      })}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
