-- What a REST client gets at the edge (envoy.filters.http.lua, before the transcoder; novasphere_envoy/config.py
-- prepends METHODS, BODY_FIELDS and the other tables from the descriptor and config):
--  * every request: a well-formed request id, and its door (grpc, grpc-web, rest) for Envoy's access log (a gRPC or
--    gRPC-Web call whose id is well-formed skips this script: config.py's header_to_metadata filter names its door);
--  * 405 with `Allow` for a method a REST path does not have (its body from the 405 local reply mapper), 404 for a
--    path with an empty segment;
--  * no gRPC status headers on REST responses (gRPC and gRPC-Web requests are left alone: they need them);
--  * field paths in errors as the client wrote them: JSON names (pageSize, not page_size), relative to the body it
--    sent (spec.cpu, not wukong.spec.cpu), in the API's own errors and in the transcoder's;
--  * the transcoder's errors (bad value, unknown query parameter, malformed body) in the API's shape, with an
--    ErrorInfo reason and, when a field is at fault, a BadRequest naming it.
-- Only error bodies (status >= 400, JSON) are read; successful responses and SSE streams pass as they come.

local REST = "novasphere.rest" -- set for REST requests only: what envoy_on_response rewrites
local DOOR = "novasphere.door" -- every request's door, for the access log

-- A new request id: a random UUID (version 4), like the ones Envoy makes.
local function new_request_id()
  local random = io.open("/dev/urandom", "rb")
  local bytes = random:read(16)
  random:close()
  local hex = string.gsub(bytes, ".", function(c)
    return string.format("%02x", string.byte(c))
  end)
  local variant = string.format("%x", 8 + string.byte(bytes, 9) % 4)
  return string.sub(hex, 1, 8) .. "-" .. string.sub(hex, 9, 12) .. "-4" .. string.sub(hex, 14, 16) .. "-"
    .. variant .. string.sub(hex, 18, 20) .. "-" .. string.sub(hex, 21, 32)
end

-- Every request, whatever its door: Envoy keeps a client's x-request-id (preserve_external_request_id), so one that
-- is not 1-64 of [A-Za-z0-9._-] is replaced here, before anything logs or forwards it: no client forges log fields
-- or carries a payload into every log with it. (The API server checks the same for calls that bypass Envoy.)
local function check_request_id(headers)
  local id = headers:get("x-request-id") or ""
  if #id < 1 or #id > 64 or string.find(id, "^[A-Za-z0-9._%-]+$") == nil then
    headers:replace("x-request-id", new_request_id())
  end
end

-- The door a call came through, by the content-type the client sent (before gRPC-Web and the transcoder rewrite
-- it): the word the API server's access events use, for Envoy's access log.
local function door_of(content_type)
  if string.sub(content_type, 1, 20) == "application/grpc-web" then
    return "grpc-web"
  elseif string.sub(content_type, 1, 16) == "application/grpc" then
    return "grpc"
  end
  return "rest"
end

function envoy_on_request(handle)
  local headers = handle:headers()
  check_request_id(headers)
  local door = door_of(headers:get("content-type") or "")
  handle:streamInfo():dynamicMetadata():set(DOOR, "door", door)
  handle:streamInfo():dynamicMetadata():set(DOOR, "request_id", headers:get("x-request-id"))
  if door ~= "rest" then
    return
  end
  local method = headers:get(":method")
  local path = string.gsub(headers:get(":path") or "", "%?.*", "")
  -- An empty path segment is an identifier left out (`/api/v1/tasks/` from a task id that was ""): the transcoder
  -- would match it to another RPC (ListTasks), so it is no route at all.
  if string.find(path, "//", 1, true) or (#path > 1 and string.sub(path, -1) == "/") then
    handle:respond({ [":status"] = "404" }, "the path " .. path .. " has an empty segment: fill in the identifier")
    return
  end
  -- A path with RPCs, asked with a method none of them has (CORS preflights never get here: the CORS filter before
  -- this one answers them, whatever their origin).
  for _, known in ipairs(METHODS) do
    if string.find(path, known[1]) then
      if not string.find(", " .. known[2] .. ", ", ", " .. method .. ", ", 1, true) then
        local message = method .. " is not a method of this path; it has " .. known[2]
        handle:respond({ [":status"] = "405", ["allow"] = known[2] }, message)
        return
      end
      break
    end
  end
  -- The whole body, before the transcoder streams it on: past the listener's buffer limit Envoy answers 413 here,
  -- where the transcoder alone would pass an oversized body to the API server.
  if method == "POST" or method == "PUT" or method == "PATCH" then
    handle:body()
  end
  local prefix = ""
  for _, rule in ipairs(BODY_FIELDS) do
    if rule[1] == method and string.find(path, rule[2]) then
      prefix = rule[3] .. "."
    end
  end
  handle:streamInfo():dynamicMetadata():set(REST, "body_prefix", prefix)
end

-- A proto field path (wukong.spec.disks[0].storage_class_name, labels[app_name]) as the client wrote it: without the
-- body field's prefix, each field name in lowerCamelCase; map keys and indexes in brackets are kept as they are.
local function json_path(path, prefix)
  if prefix ~= "" and string.sub(path, 1, #prefix) == prefix then
    path = string.sub(path, #prefix + 1)
  end
  local out, rest = {}, path
  while rest ~= "" do
    local name, bracket, after = string.match(rest, "^([^%[]*)(%b[])(.*)$")
    if name == nil then
      name, bracket, after = rest, "", ""
    end
    out[#out + 1] = string.gsub(name, "_(%w)", string.upper) .. bracket
    rest = after
  end
  return table.concat(out)
end

local function json_string(text)
  local escaped = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' or c == "\\" then
      return "\\" .. c
    end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

-- The position of the quote that ends the JSON string whose text starts at `i` (past its opening quote).
local function string_end(text, i)
  while i <= #text do
    local c = string.sub(text, i, i)
    if c == '"' then
      return i
    end
    i = i + (c == "\\" and 2 or 1)
  end
  return #text + 1
end

local UNESCAPE = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

-- The "message" string of a local reply's JSON body (see _status_json in config.py).
local function message_of(body)
  local start = string.find(body, '"message":"', 1, true)
  if start == nil then
    return ""
  end
  local out, i = {}, start + 11
  while i <= #body do
    local c = string.sub(body, i, i)
    if c == '"' then
      break
    elseif c == "\\" then
      local e = string.sub(body, i + 1, i + 1)
      if e == "u" then
        local code = tonumber(string.sub(body, i + 2, i + 5), 16) or 63
        out[#out + 1] = code < 128 and string.char(code) or "?"
        i = i + 4
      else
        out[#out + 1] = UNESCAPE[e] or e
      end
      i = i + 2
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

local function status_json(message, reason, violation, request_id)
  local details = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":' .. json_string(reason)
    .. ',"domain":' .. json_string(DOMAIN) .. ',"metadata":{}}'
  if violation ~= nil then
    details = details .. ',{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":'
      .. json_string(violation[1]) .. ',"description":' .. json_string(violation[2])
      .. ',"reason":""}]}'
  end
  details = details .. ',{"@type":"type.googleapis.com/google.rpc.RequestInfo","requestId":'
    .. json_string(request_id) .. ',"servingData":""}'
  return '{"code":3,"message":' .. json_string(message) .. ',"details":[' .. details .. "]}"
end

-- The transcoder's 400s: "<proto path>: <problem>" (a value of the wrong type, an unknown enum value), "Could not
-- find field "<name>" in the type ..." (an unknown query parameter), anything else a body it could not read.
local function transcoder_error(message, prefix, request_id)
  local unknown = string.match(message, '^Could not find field "([^"]*)" in the type')
  if unknown ~= nil then
    local problem = "no such query parameter"
    return status_json(unknown .. ": " .. problem, REASON_INVALID_ARGUMENT, { unknown, problem }, request_id)
  end
  local path, problem = string.match(message, "^([%w_%.%[%]]+): (.*)$")
  if path ~= nil then
    local field = json_path(path, prefix)
    return status_json(field .. ": " .. problem, REASON_INVALID_ARGUMENT, { field, problem }, request_id)
  end
  message = string.gsub(message, "^: ", "")
  local read = "the request body is not JSON of this method's request: " .. message
  return status_json(read, REASON_MALFORMED, nil, request_id)
end

function envoy_on_response(handle)
  local rest = handle:streamInfo():dynamicMetadata():get(REST)
  if rest == nil then
    return
  end
  local headers = handle:headers()
  for _, name in ipairs(GRPC_HEADERS) do
    headers:remove(name)
  end
  local status = tonumber(headers:get(":status")) or 0
  if status < 400 or string.sub(headers:get("content-type") or "", 1, 16) ~= "application/json" then
    return
  end
  local body = handle:body()
  if body == nil then
    return
  end
  local text = body:getBytes(0, body:length())
  headers = handle:headers() -- the one from before body() is out of scope once it waited for the body
  local rewritten
  -- The router times what came from the API server; Envoy's own replies (the transcoder's) carry no such header.
  if headers:get("x-envoy-upstream-service-time") ~= nil then
    -- Each path is rewritten as it stands in the JSON, escapes and all (a label key may hold quotes, backslashes,
    -- anything): json_path only changes field names, never what is inside brackets, so the string stays valid.
    local renamed, parts, from = {}, {}, 1
    while true do
      local first, last = string.find(text, '"field":"', from, true)
      if first == nil then
        break
      end
      local close = string_end(text, last + 1)
      local path = string.sub(text, last + 1, close - 1)
      renamed[path] = json_path(path, rest.body_prefix)
      parts[#parts + 1] = string.sub(text, from, last) .. renamed[path] .. '"'
      from = close + 1
    end
    parts[#parts + 1] = string.sub(text, from)
    rewritten = table.concat(parts)
    -- The message names the fields too ("invalid request: page_size: ..."), the API's way.
    for path, json in pairs(renamed) do
      rewritten = string.gsub(rewritten, string.gsub(path, "%p", "%%%0") .. ": ", (string.gsub(json, "%%", "%%%%")) .. ": ")
    end
  elseif status == 400 then
    local request = handle:streamInfo():dynamicMetadata():get(DOOR) or {}
    rewritten = transcoder_error(message_of(text), rest.body_prefix, request.request_id or "")
  else
    return
  end
  body:setBytes(rewritten)
  headers:replace("content-length", tostring(#rewritten))
end
