// An independent gRPC-Web client for integration tests: @connectrpc/connect's gRPC-Web transport over HTTP/1.1 (as a
// browser speaks it through Envoy), with message types taken at run time from a protobuf descriptor set (a
// FileDescriptorSet, protoc --include_imports), so no generated code is needed.
//
//   node grpcweb.mjs DESCRIPTOR_SET < request.json
//
// Standard input holds one JSON object:
//   {"baseUrl": "http://127.0.0.1:PORT", "service": "novasphere.v1.WukongService", "method": "GetWukong",
//    "request": {...proto3 JSON...}, "headers": {...}, "maxMessages": N, "timeoutMs": T}
// (headers, maxMessages and timeoutMs are optional; timeoutMs defaults to 10000 and is sent as grpc-timeout).
// Standard output gets one JSON line per response message, {"message": {...proto3 JSON...}}, then one line
//   {"end": {"code": 5, "codeName": "not_found", "message": "...", "details": [{"type": "google.rpc.ErrorInfo",
//    "value": {...proto3 JSON...}}]}}
// with the numeric gRPC status code (0 for OK). A server stream is cancelled after maxMessages messages, which ends
// with code 0 and the message "client stopped after N messages". The exit status is 0 whenever an end line was
// written (whatever the RPC's status) and 2 for a usage error (bad arguments, input, service, method or request).
import { readFileSync } from "node:fs";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { createFileRegistry, fromBinary, fromJson, toJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const DEFAULT_TIMEOUT_MS = 10_000;
const OK = 0; // connect's Code enum starts at Canceled = 1; its numbers are the gRPC status codes

function usage(text) {
  process.stderr.write(`grpcweb.mjs: ${text}\nusage: node grpcweb.mjs DESCRIPTOR_SET < request.json\n`);
  process.exit(2);
}

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function readInput() {
  let input;
  try {
    input = JSON.parse(readFileSync(0, "utf8"));
  } catch (e) {
    usage(`standard input is not one JSON object: ${e.message}`);
  }
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    usage("standard input is not one JSON object");
  }
  for (const key of ["baseUrl", "service", "method"]) {
    if (typeof input[key] !== "string" || input[key] === "") usage(`"${key}" must be a non-empty string`);
  }
  if (input.maxMessages !== undefined && !(Number.isInteger(input.maxMessages) && input.maxMessages > 0)) {
    usage('"maxMessages" must be a positive integer');
  }
  if (input.timeoutMs !== undefined && !(Number.isInteger(input.timeoutMs) && input.timeoutMs > 0)) {
    usage('"timeoutMs" must be a positive integer');
  }
  if (input.headers !== undefined && (input.headers === null || typeof input.headers !== "object")) {
    usage('"headers" must be an object of strings');
  }
  return input;
}

function loadRegistry(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    usage(`cannot read the descriptor set: ${e.message}`);
  }
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
}

// An error detail as {"type", "value"}: the proto3 JSON of the message when the registry knows its type, otherwise
// the raw bytes in base64 under "bytes" (and "value" null), so nothing is silently dropped.
function detailJson(detail, registry) {
  if ("desc" in detail) {
    return { type: detail.desc.typeName, value: detail.value };
  }
  const desc = registry.getMessage(detail.type);
  if (desc === undefined) {
    return { type: detail.type, value: null, bytes: Buffer.from(detail.value).toString("base64") };
  }
  return { type: detail.type, value: toJson(desc, fromBinary(desc, detail.value), { registry }) };
}

function endLine(code, message, details = []) {
  return { end: { code, codeName: code === OK ? "ok" : codeToString(code), message, details } };
}

async function main() {
  const [descriptorPath, ...rest] = process.argv.slice(2);
  if (descriptorPath === undefined || rest.length > 0) usage("expected exactly one argument");
  const registry = loadRegistry(descriptorPath);
  const input = readInput();

  const service = registry.getService(input.service);
  if (service === undefined) usage(`no service ${input.service} in ${descriptorPath}`);
  const method = service.methods.find((m) => m.name === input.method);
  if (method === undefined) usage(`no method ${input.method} in ${input.service}`);
  if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
    usage(`${input.method} is a ${method.methodKind} method; gRPC-Web has only unary and server-streaming calls`);
  }
  let request;
  try {
    request = fromJson(method.input, input.request ?? {}, { registry });
  } catch (e) {
    usage(`"request" is not a valid ${method.input.typeName}: ${e.message}`);
  }

  const transport = createGrpcWebTransport({ baseUrl: input.baseUrl, httpVersion: "1.1", useBinaryFormat: true });
  const client = createClient(service, transport);
  const call = client[method.localName];
  const controller = new AbortController();
  const options = {
    headers: input.headers ?? {},
    timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    signal: controller.signal,
  };
  const messageLine = (response) => ({ message: toJson(method.output, response, { registry }) });

  let end;
  try {
    if (method.methodKind === "unary") {
      emit(messageLine(await call(request, options)));
      end = endLine(OK, "");
    } else {
      let count = 0;
      end = endLine(OK, "");
      for await (const response of call(request, options)) {
        emit(messageLine(response));
        count += 1;
        if (input.maxMessages !== undefined && count >= input.maxMessages) {
          controller.abort();
          end = endLine(OK, `client stopped after ${count} messages`);
          break;
        }
      }
    }
  } catch (e) {
    const error = ConnectError.from(e);
    end = endLine(
      error.code,
      error.rawMessage,
      error.details.map((d) => detailJson(d, registry)),
    );
  }
  emit(end);
}

await main();
// Nothing else is awaited: exit once standard output is flushed rather than wait for idle keep-alive sockets.
process.stdout.write("", () => process.exit(0));
