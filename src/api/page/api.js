// The API client: the token lives in sessionStorage (gone when the tab closes, never in a
// cookie, so no CSRF), and every call sends it as a bearer token.

const KEY = "citybrain.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// A failed call, with the status and the server's own message ({"error": "..."}).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  describe() {
    const what = {
      400: "Rejected",
      401: "Not signed in",
      403: "Not allowed for your role",
      404: "Not found",
      409: "Not possible now",
    }[this.status] || `Error ${this.status}`;
    return `${what}: ${this.message}`;
  }
}

export async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${token.get() || ""}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `server unreachable (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && data.error) || text || res.statusText;
    throw new ApiError(res.status, msg);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

// A GET whose absence (404: the route is not on this server) is an answer, not an error.
export async function getOptional(path) {
  try {
    return await get(path);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

// The page's settings need no token.
export async function pageConfig() {
  try {
    const res = await fetch("/page/config.json");
    return res.ok ? await res.json() : {};
  } catch {
    return {};
  }
}
