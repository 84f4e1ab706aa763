// @ts-check
// Closes an X11 window the way a window manager's close button does: a WM_DELETE_WINDOW client
// message. Xvfb has no window manager and xdotool has no polite close (its windowkill ends the whole
// client), so this speaks the few X11 requests needed over the display's Unix socket.
//
// Also a command line, for scripts/bench-app:  node x11.mjs close-window DISPLAY WINDOW_ID...

import { connect } from "node:net";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const INTERN_ATOM = 16;
const SEND_EVENT = 25;
const CLIENT_MESSAGE = 33;

/** Reads exact byte counts from a socket. */
class Reader {
  /** @param {import("node:net").Socket} socket */
  constructor(socket) {
    /** @type {Buffer} */
    this.buffer = Buffer.alloc(0);
    /** @type {Error | null} */
    this.failure = null;
    /** @type {(() => void) | null} */
    this.wake = null;
    socket.on("data", (/** @type {Buffer} */ chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake?.();
    });
    const fail = (/** @type {Error} */ error) => {
      this.failure = error;
      this.wake?.();
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("the X server closed the connection")));
  }

  /** @param {number} length @returns {Promise<Buffer>} */
  async read(length) {
    while (this.buffer.length < length) {
      if (this.failure) throw this.failure;
      await new Promise((resolve) => (this.wake = () => resolve(undefined)));
    }
    const bytes = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return bytes;
  }

  /** The next reply; an X error (first byte 0) is thrown. */
  async reply() {
    const head = await this.read(32);
    if (head[0] === 0) throw new Error(`X error ${head[1]} for request ${head[10]}`);
    const extra = head.readUInt32LE(4) * 4;
    return Buffer.concat([head, await this.read(extra)]);
  }
}

/** @param {number} length */
const padded = (length) => (length + 3) & ~3;

/** Connection setup, little-endian, no authorization (Xvfb started without -auth needs none). */
function setupRequest() {
  const request = Buffer.alloc(12);
  request.write("l", 0, "latin1");
  request.writeUInt16LE(11, 2);
  return request;
}

/** @param {string} name */
function internAtomRequest(name) {
  const request = Buffer.alloc(8 + padded(name.length));
  request.writeUInt8(INTERN_ATOM, 0);
  request.writeUInt16LE(request.length / 4, 2);
  request.writeUInt16LE(name.length, 4);
  request.write(name, 8, "latin1");
  return request;
}

/** @param {number} window @param {number} protocols @param {number} deleteWindow */
function deleteWindowRequest(window, protocols, deleteWindow) {
  const request = Buffer.alloc(44);
  request.writeUInt8(SEND_EVENT, 0);
  request.writeUInt16LE(11, 2);
  request.writeUInt32LE(window, 4);
  // Event mask 0: delivered to the client that created the window, as window managers send it.
  request.writeUInt32LE(0, 8);
  const event = request.subarray(12);
  event.writeUInt8(CLIENT_MESSAGE, 0);
  event.writeUInt8(32, 1);
  event.writeUInt32LE(window, 4);
  event.writeUInt32LE(protocols, 8);
  event.writeUInt32LE(deleteWindow, 12);
  // data[1] is the timestamp: CurrentTime (0); the rest stays 0.
  return request;
}

/**
 * Asks the program owning each window to close it, as a click on its close button would.
 * @param {string} display like ":99"
 * @param {number[]} windows X window ids (xdotool search prints them in decimal)
 */
export async function closeWindows(display, windows) {
  const number = display.replace(/^:/, "").split(".")[0];
  const socket = connect(`/tmp/.X11-unix/X${number}`);
  const reader = new Reader(socket);
  try {
    await once(socket, "connect");
    socket.write(setupRequest());
    const head = await reader.read(8);
    const rest = await reader.read(head.readUInt16LE(6) * 4);
    if (head[0] !== 1) throw new Error(`the X server refused the connection: ${rest.toString("latin1", 0, head[1])}`);
    const atom = async (/** @type {string} */ name) => {
      socket.write(internAtomRequest(name));
      return (await reader.reply()).readUInt32LE(8);
    };
    const protocols = await atom("WM_PROTOCOLS");
    const deleteWindow = await atom("WM_DELETE_WINDOW");
    for (const window of windows) socket.write(deleteWindowRequest(window, protocols, deleteWindow));
    // One more round trip: the server answers in order, so the events have been handled (or an
    // error for a bad window has arrived) when this reply comes.
    await atom("WM_DELETE_WINDOW");
  } finally {
    socket.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, display, ...windows] = process.argv.slice(2);
  if (command !== "close-window" || !display || windows.length === 0) {
    console.error("usage: node x11.mjs close-window DISPLAY WINDOW_ID...");
    process.exit(2);
  }
  closeWindows(display, windows.map(Number)).catch((error) => {
    console.error(`x11.mjs: ${error.message}`);
    process.exit(1);
  });
}
