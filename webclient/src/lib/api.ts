// The JSON HTTP API (sign-in, profile, links, files). Errors are problem+json with a code.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors: { field: string; message: string }[] = [],
    /** Seconds the server asks to wait (`Retry-After`), when it says. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const retryAfter = Number(response.headers.get("retry-after")) || undefined;
    throw new ApiError(response.status, data.code ?? "http_error", data.detail ?? "", data.errors, retryAfter);
  }
  return data as T;
}

/** Upload with progress (XMLHttpRequest: fetch reports no upload progress). */
export function upload(
  chatId: number,
  file: Blob,
  kind: string,
  name: string,
  onProgress: (fraction: number) => void,
): Promise<any> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const query = new URLSearchParams({ kind, name });
    request.open("POST", `/api/v1/chats/${chatId}/files?${query}`);
    request.withCredentials = true;
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    request.onload = () => {
      const data = request.responseText ? JSON.parse(request.responseText) : {};
      if (request.status >= 400) {
        reject(new ApiError(request.status, data.code ?? "http_error", data.detail ?? ""));
      } else resolve(data);
    };
    request.onerror = () => reject(new ApiError(0, "network", "network error"));
    request.send(file);
  });
}
