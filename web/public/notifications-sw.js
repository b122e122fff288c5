// The web console's service worker, for Web Push only (registered by the Notifications page, scope "/"): it shows what
// NovaSphere sends ({id, title, body, data} as JSON, RFC 8291-encrypted by the server, decrypted by the browser) and
// opens the console where the notification points when it is clicked. It caches nothing and handles no fetch.
"use strict";

self.addEventListener("install", () => {
  self.skipWaiting(); // a new version takes over at once: it holds no state
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", (event) => {
  let payload = {};
  if (event.data) {
    try {
      payload = event.data.json();
    } catch {
      payload = { body: event.data.text() };
    }
  }
  const data = payload.data && typeof payload.data === "object" ? payload.data : {};
  const options = { body: String(payload.body || ""), data, icon: "/favicon.svg" };
  if (payload.id) options.tag = String(payload.id); // a repeat of the same notification replaces it
  event.waitUntil(self.registration.showNotification(String(payload.title || "NovaSphere"), options));
});

/** Where a click goes: the VM, the namespace's VMs, or the list (always this origin). */
function target(data) {
  const names = String(data.names || "");
  if (data.namespace && names && !names.includes(",")) {
    return `/vms/${encodeURIComponent(data.namespace)}/${encodeURIComponent(names)}`;
  }
  if (data.namespace) return `/vms?ns=${encodeURIComponent(data.namespace)}`;
  return "/vms";
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(target(event.notification.data || {}), self.location.origin).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      if (open) {
        const focused = await open.focus();
        return focused.navigate(url).catch(() => focused); // a page this worker does not control stays where it is
      }
      return self.clients.openWindow(url);
    })(),
  );
});
