/**
 * The page of both kinds of window (bundled to dist/renderer.js): no Node, no IPC, only `window.cellar`.
 */
import type { RendererStore, RemoteError } from "cellar/electron";
import type { entities } from "../../src/generated/index.js";

declare global {
  interface Window {
    cellar: RendererStore<typeof entities>;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T | null;
const show = (e: unknown) => {
  const err = e as RemoteError;
  const out = $("error");
  if (out) out.textContent = `${err.code}: ${err.message}`;
};

const list = $("tasks");
if (list) {
  // Every open task (status TODO = 1), live: writes from any window or from main arrive here.
  const off = window.cellar.tasks.watch({ status: 1 }).subscribe(({ value, seq }) => {
    list.replaceChildren(
      ...value.map((t) => {
        const li = document.createElement("li");
        li.textContent = `${t.title} `;
        const done = document.createElement("button");
        done.textContent = "done";
        done.onclick = () => void window.cellar.tasks.update(t.id, { status: 3 }).catch(show);
        li.append(done);
        return li;
      }),
    );
    const s = $("seq");
    if (s) s.textContent = String(seq);
  }, show);
  window.addEventListener("beforeunload", off);

  $<HTMLFormElement>("add")!.onsubmit = (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("title")!;
    // A title over 500 characters comes back as E_VALIDATION, checked in main.
    window.cellar.tasks.put({ id: crypto.randomUUID(), title: input.value, status: 1 }).then(() => (input.value = ""), show);
  };
}

const key = $("apikey");
if (key) {
  window.cellar.settings.watch().subscribe(({ value }) => {
    key.textContent = value.aiProvider?.apiKey || "(none)";
  }, show);
  $<HTMLFormElement>("setkey")!.onsubmit = (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("newkey")!;
    window.cellar.settings.update({ aiProvider: { apiKey: input.value } }).catch(show);
  };
}
