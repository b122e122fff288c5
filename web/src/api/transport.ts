// gRPC-Web through Envoy on the page's own origin: the same listener serves this app, the API and the consoles.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

export function transport(interceptors: Interceptor[] = []): Transport {
  return createGrpcWebTransport({
    baseUrl: window.location.origin,
    useBinaryFormat: true,
    interceptors: [clientType, ...interceptors],
  });
}

/** The API's request logs and sessions tell the web console from other clients by this header. */
const clientType: Interceptor = (next) => (request) => {
  request.header.set("X-Client-Type", "web");
  return next(request);
};
