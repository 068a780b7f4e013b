/**
 * Main process of the example: the only process that opens the store. Two windows show the same tasks;
 * a write in either (or here, in main) reaches both through their watches. The settings window may see the
 * settings' sensitive API key; the task windows see it as "[redacted]".
 */
import { app, BrowserWindow, ipcMain, safeStorage, type WebContents } from "electron";
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { exposeStore, type AllowList, type ExposedStore } from "cellar/electron";
import { entities, openStore } from "../../src/generated/index.js";

type Store = Awaited<ReturnType<typeof openStore>>;

/** The store's master key, kept encrypted by the OS (safeStorage) in the app's data directory. */
function masterKey(): Uint8Array {
  const file = path.join(app.getPath("userData"), "cellar.key");
  if (fs.existsSync(file)) {
    const stored = fs.readFileSync(file);
    return Buffer.from(safeStorage.isEncryptionAvailable() ? safeStorage.decryptString(stored) : stored.toString(), "base64");
  }
  const key = randomBytes(32);
  const text = key.toString("base64");
  fs.writeFileSync(file, safeStorage.isEncryptionAvailable() ? safeStorage.encryptString(text) : text, { mode: 0o600 });
  return key;
}

const taskWindows: AllowList<typeof entities> = {
  tasks: ["read", "write", "watch"],
  settings: ["get", "watch"],
};
const settingsWindow: AllowList<typeof entities> = {
  settings: { ops: ["get", "update", "watch"], sensitive: true },
};

let store: Store | undefined;
let exposed: ExposedStore | undefined;
let settingsContents: WebContents | undefined;

function open(file: string, width: number): BrowserWindow {
  const win = new BrowserWindow({
    width,
    height: 600,
    webPreferences: {
      preload: path.join(import.meta.dirname, "preload.cjs"),
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
    },
  });
  void win.loadFile(path.join(import.meta.dirname, "..", file));
  return win;
}

app.whenReady().then(async () => {
  store = await openStore({ dir: path.join(app.getPath("userData"), "store"), key: masterKey() });
  exposed = exposeStore(store, {
    ipcMain,
    // Per window: the settings window may read the API key, the others may not.
    allow: (sender) => (sender.id === settingsContents?.id ? settingsWindow : taskWindows),
  });
  open("index.html", 700);
  open("index.html", 700);
  settingsContents = open("settings.html", 500).webContents;
  // A write made in main reaches both task windows.
  await store.tasks.put({ id: `welcome`, title: "Welcome: edit me in either window" });
});

let closing = false;
app.on("before-quit", (event) => {
  if (closing || !store) return;
  closing = true;
  event.preventDefault();
  exposed?.close();
  void store.close().finally(() => app.quit());
});

app.on("window-all-closed", () => app.quit());
