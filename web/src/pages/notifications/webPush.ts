// Web Push in this browser: whether it can be offered here, and the subscription (through the service worker at the
// web root, web/public/notifications-sw.js) that RegisterDevice records as a WEB device of the caller's.
import { DevicePlatform, type Device, type PushSettings } from "@gen/novasphere/v1/notification_service_pb";
import { notificationClient } from "../../api/clients";

export const SERVICE_WORKER = "/notifications-sw.js";
/** The device this browser's subscription was registered as (its id: DeleteDevice when turned off here). */
const REMEMBERED_DEVICE = "novasphere.webPushDevice";

/** Why Web Push cannot be offered here, or that it can (`available`), or that it already works (`enabled`). */
export type WebPushState = "unconfigured" | "insecure" | "unsupported" | "denied" | "available" | "enabled";

export function supported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** Where this browser stands, given the installation's settings and the caller's devices. */
export async function webPushState(settings: PushSettings, devices: Device[]): Promise<WebPushState> {
  if (!settings.platforms.includes(DevicePlatform.WEB) || !settings.vapidPublicKey) return "unconfigured";
  if (!window.isSecureContext) return "insecure";
  if (!supported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const subscription = await currentSubscription();
  const remembered = localStorage.getItem(REMEMBERED_DEVICE);
  const registered = remembered !== null && devices.some((d) => d.id === remembered);
  return subscription && Notification.permission === "granted" && registered ? "enabled" : "available";
}

async function currentSubscription(): Promise<PushSubscription | null> {
  const registration = await navigator.serviceWorker.getRegistration(SERVICE_WORKER);
  return (await registration?.pushManager.getSubscription()) ?? null;
}

/** Asks for permission, subscribes with the installation's VAPID key and registers this browser; "denied" when the
 * person did not allow notifications. */
export async function enableWebPush(
  settings: PushSettings,
  describe: { name: string; locale: string },
): Promise<Device | "denied"> {
  // first, while the click still counts as the person's gesture (browsers ignore later requests)
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return "denied";
  await navigator.serviceWorker.register(SERVICE_WORKER, { scope: "/" });
  const registration = await navigator.serviceWorker.ready; // subscribing needs an active worker
  const key = base64UrlToBytes(settings.vapidPublicKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made with another key (the installation's changed): subscribing again fails
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = subscription.toJSON();
  const device = await notificationClient.registerDevice({
    platform: DevicePlatform.WEB,
    webPush: { endpoint: subscription.endpoint, p256dh: json.keys?.["p256dh"] ?? "", auth: json.keys?.["auth"] ?? "" },
    name: describe.name,
    locale: describe.locale,
    requestId: crypto.randomUUID(),
  });
  localStorage.setItem(REMEMBERED_DEVICE, device.id);
  return device;
}

/** Unsubscribes this browser and forgets its device on the server. */
export async function disableWebPush(): Promise<string | null> {
  const remembered = localStorage.getItem(REMEMBERED_DEVICE);
  if (remembered) await notificationClient.deleteDevice({ id: remembered, requestId: crypto.randomUUID() });
  await (await currentSubscription())?.unsubscribe();
  localStorage.removeItem(REMEMBERED_DEVICE);
  return remembered;
}

export function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const view = new Uint8Array(a);
  return view.every((byte, i) => byte === b[i]);
}

/** "Chrome on Linux": what the device list calls this browser (names of products, the same in every language). */
export function browserAndSystem(): { browser: string; system: string } {
  const agent = navigator.userAgent;
  const browser =
    [
      [/Edg\//, "Edge"],
      [/OPR\//, "Opera"],
      [/Firefox\//, "Firefox"],
      [/Chrom(e|ium)\//, "Chrome"],
      [/Safari\//, "Safari"],
    ].find(([pattern]) => (pattern as RegExp).test(agent))?.[1] as string | undefined;
  const system =
    [
      [/Android/, "Android"],
      [/iPhone|iPad/, "iOS"],
      [/Windows/, "Windows"],
      [/Mac OS X/, "macOS"],
      [/CrOS/, "ChromeOS"],
      [/Linux/, "Linux"],
    ].find(([pattern]) => (pattern as RegExp).test(agent))?.[1] as string | undefined;
  return { browser: browser ?? "", system: system ?? "" };
}
