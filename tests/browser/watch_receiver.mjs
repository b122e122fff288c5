// The benchmark's WatchWukong receiver (bench/__main__.py): N native gRPC streams over HTTP/2 from Node, whose
// per-message cost is small next to the API server's, so the benchmark measures the server's fan-out rather than a
// Python client's. Message types come from the descriptor set at run time.
//
//   node watch_receiver.mjs DESCRIPTOR_SET HOST:PORT STREAMS NAMESPACE LABEL_SELECTOR
//
// Prints "ready" once every stream has had its first BOOKMARK (the initial state is over), then, for each change,
// "<labels.seq> <CLOCK_MONOTONIC seconds>" when the last of the streams has received it.
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { createFileRegistry, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const [descriptorPath, target, streamsText, namespace, labelSelector] = process.argv.slice(2);
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
const remaining = new Map();
let ready = 0;

for (let index = 0; index < streams; index++) {
  const stream = sessions[index % sessions.length].request({
    ":method": "POST",
    ":path": "/novasphere.v1.WukongService/WatchWukong",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.end(frame);
  let live = false;
  let buffered = Buffer.alloc(0);
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
      const left = (remaining.get(sequence) ?? streams) - 1;
      remaining.set(sequence, left);
      if (left === 0) console.log(sequence, Number(process.hrtime.bigint()) / 1e9);
    }
  });
  stream.on("error", (error) => {
    console.error(`stream ${index}: ${error.message}`);
    process.exit(1);
  });
}
