// The benchmark's change receiver (bench/__main__.py, bench/grpc_floor.py), in one language and one style for both
// sides of the comparison: N native gRPC WatchWukong streams over HTTP/2, or N clients each holding its own direct
// Kubernetes watches (HTTPS, client certificate) on Wukongs, VirtualMachines and VirtualMachineInstances, as a client
// that derives a VM's status itself needs. Node's per-message cost is small next to the servers', so the benchmark
// measures the servers' fan-out rather than a Python client's. gRPC message types come from the descriptor set.
//
//   node watch_receiver.mjs DESCRIPTOR_SET HOST:PORT STREAMS NAMESPACE LABEL_SELECTOR
//   BENCH_KUBE='{"server", "ca", "cert", "key", "resourceVersions": {plural: rv}}' \
//     node watch_receiver.mjs --kube CLIENTS NAMESPACE PROBE_NAME
//
// Prints "ready" once every stream has had its first BOOKMARK (the initial state is over), or every watch has been
// accepted, then, for each change, "<labels.seq> <CLOCK_MONOTONIC seconds>" when the last of the streams (or of the
// clients' Wukong watches) has received it. Opens gRPC streams OPENING at a time. Exits with status 1 (the reason on
// stderr) as soon as any stream or watch ends or fails: the benchmark then stops waiting.
import http2 from "node:http2";
import https from "node:https";
import { readFileSync } from "node:fs";
import { createFileRegistry, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const remaining = new Map();
// gRPC streams one receiver has sent and not yet had response headers for. grpcio's server takes calls from its core
// one at a time on its event loop; the calls it has not taken yet wait in the core, which cancels new ones at random
// once 1,000 wait (grpc.server.max_pending_requests; every new one at 3,000). 2,000 streams sent at once lost about a
// tenth of them that way (CANCELLED before any message). Keep OPENING x --receivers well under 1,000.
const OPENING = 100;

function received(sequence, receivers) {
  const left = (remaining.get(sequence) ?? receivers) - 1;
  remaining.set(sequence, left);
  if (left === 0) console.log(sequence, Number(process.hrtime.bigint()) / 1e9);
}

if (process.argv[2] === "--kube") {
  watchKube(...process.argv.slice(3));
} else {
  watchGrpc(...process.argv.slice(2));
}

function watchKube(clientsText, namespace, probe) {
  const clients = Number(clientsText);
  const config = JSON.parse(process.env.BENCH_KUBE);
  const server = new URL(config.server);
  const agent = new https.Agent({ keepAlive: true, maxSockets: Infinity, ca: config.ca, cert: config.cert, key: config.key });
  const kinds = [
    ["/apis/vm.novasphere.dev/v1alpha1", "wukongs"],
    ["/apis/kubevirt.io/v1", "virtualmachines"],
    ["/apis/kubevirt.io/v1", "virtualmachineinstances"],
  ];
  const watches = clients * kinds.length;
  let accepted = 0;
  for (let client = 0; client < clients; client++) {
    for (const [group, plural] of kinds) {
      const query = new URLSearchParams({
        watch: "true",
        resourceVersion: config.resourceVersions[plural],
        allowWatchBookmarks: "true",
        timeoutSeconds: "3600",
      });
      const request = https.request({
        host: server.hostname,
        port: server.port,
        path: `${group}/namespaces/${namespace}/${plural}?${query}`,
        agent,
        headers: { Accept: "application/json" },
      });
      request.on("response", (response) => {
        if (response.statusCode !== 200) {
          console.error(`watch ${plural}: HTTP ${response.statusCode}`);
          process.exit(1);
        }
        if (++accepted === watches) console.log("ready");
        let buffered = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => {
          buffered += chunk;
          let newline;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (!line) continue;
            const event = JSON.parse(line);
            if (event.type === "ERROR") {
              console.error(`watch ${plural}: ${JSON.stringify(event.object)}`);
              process.exit(1);
            }
            const metadata = event.object?.metadata;
            if (plural !== "wukongs" || metadata?.name !== probe) continue;
            const sequence = metadata.labels?.seq;
            if (sequence !== undefined) received(sequence, clients);
          }
        });
        response.on("end", () => {
          console.error(`watch ${plural} ended`);
          process.exit(1);
        });
      });
      request.on("error", (error) => {
        console.error(`watch ${plural}: ${error.message}`);
        process.exit(1);
      });
      request.end();
    }
  }
}

function watchGrpc(descriptorPath, target, streamsText, namespace, labelSelector) {
  const streams = Number(streamsText);
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorPath)));
  const requestSchema = registry.getMessage("novasphere.v1.WatchWukongRequest");
  const eventSchema = registry.getMessage("novasphere.v1.WukongEvent");
  const BOOKMARK = 4;
  const body = toBinary(requestSchema, create(requestSchema, { namespace, labelSelector }));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);

  const sessions = Array.from({ length: Math.max(1, Math.floor(streams / 50)) }, () => http2.connect(`http://${target}`));
  for (const session of sessions) {
    session.on("error", (error) => fail(`HTTP/2 session: ${error.message}`));
    session.on("goaway", (code) => fail(`HTTP/2 session: GOAWAY ${code}`));
  }
  let ready = 0;
  let opened = 0;
  let opening = 0;
  openMore();

  function openMore() {
    while (opening < OPENING && opened < streams) open(opened++);
  }

  function open(index) {
    opening++;
    const stream = sessions[index % sessions.length].request({
      ":method": "POST",
      ":path": "/novasphere.v1.WukongService/WatchWukong",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.end(frame);
    let live = false;
    let buffered = Buffer.alloc(0);
    stream.on("response", (headers) => {
      opening--;
      if (headers["grpc-status"] !== undefined) ended(headers); // trailers only: the call failed before any message
      openMore();
    });
    stream.on("trailers", ended);
    stream.on("data", (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
        const length = buffered.readUInt32BE(1);
        const event = fromBinary(eventSchema, buffered.subarray(5, 5 + length));
        buffered = buffered.subarray(5 + length);
        if (event.type === BOOKMARK) {
          if (!live && ++ready === streams) console.log("ready");
          live = true;
          continue;
        }
        const sequence = live ? event.wukong?.labels?.seq : undefined;
        if (sequence === undefined) continue;
        received(sequence, streams);
      }
    });
    stream.on("close", () => fail(`stream ${index} closed (HTTP/2 code ${stream.rstCode})`));
    stream.on("error", (error) => fail(`stream ${index}: ${error.message}`));

    function ended(headers) {
      const message = decodeURIComponent(headers["grpc-message"] ?? "");
      fail(`stream ${index} ended: grpc-status ${headers["grpc-status"]} ${message} (${ready} of ${streams} ready)`);
    }
  }
}

// A stream that ends or fails ends the receiver: the benchmark sees it exit instead of waiting for "ready".
function fail(message) {
  console.error(message);
  process.exit(1);
}
