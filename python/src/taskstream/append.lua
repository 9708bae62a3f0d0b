-- taskstream: append events to a task's log and notify its live channel (SPEC §5).
-- One atomic call, so a publisher in any language can use it.
--
-- KEYS[1]    the task's log stream     <prefix>:{<taskId>}:log
-- KEYS[2]    the task's live channel   <prefix>:{<taskId>}:live
-- KEYS[3]    the task's calls in flight <prefix>:{<taskId>}:inflight (a hash, see below)
-- KEYS[4..]  idempotency keys          <prefix>:{<taskId>}:idem:<key>, one per event that has a key
-- ARGV[1]    agentId
-- ARGV[2]    HISTORY_MAX     approximate number of entries the log keeps (XADD MAXLEN ~)
-- ARGV[3]    RETENTION_S     the log expires this long after a terminal event
-- ARGV[4]    IDEMPOTENCY_S   how long an idempotency key is remembered
-- ARGV[5]    PUBLISH on a standalone Redis, SPUBLISH on a Redis Cluster
-- ARGV[6]    INFLIGHT_TTL_S  how long the chunks of an LLM call in flight are kept at most
-- ARGV[7]    TASK_IDLE_TTL_S the log of a task that has not ended expires this long after its
--            last append, so tasks that never end do not stay forever (0: no idle expiry)
-- ARGV[8]    N, the number of events; then four arguments per event:
--            type, data (a JSON object), time (ISO-8601, or '' for now),
--            index of its idempotency key in KEYS[4..] (1-based, 0 = none)
-- ARGV[9+4N..] optional pairs: custom type, its kind (d|t|e) — see "Event types" below
--
-- Returns one id per event ('' for an ephemeral event, which is published but not stored).
-- Each stored event is published with "prev", the id of the stored event before it, so a
-- listener that missed a message (a reconnect, a failover) sees the gap and reads the log.
-- Fails with 'TS_<CODE> <message>' and changes nothing when any event is invalid.
--
-- LLM calls in flight (SPEC §8.2; the memory log applies the same rules, src/events/inflight.ts):
-- data.call_id (a string) names a call; without it a chunk or completion belongs to the most
-- recent started call not yet completed, and a started call without one is named by its id.
-- The chunks of a call are kept in KEYS[3] until its WorkflowLLMCallCompleted or a terminal
-- event (which deletes the hash), the hash expiring INFLIGHT_TTL_S after the latest call start.
-- Fields: 'open' = JSON array of started calls not completed (start order); per call <cid>:
-- 's:<cid>' id of its WorkflowLLMCallStarted ('' when never started), 'm:<cid>' model,
-- 'n:<cid>' number of kept chunks, 'c:<cid>:<n>' the n-th kept chunk (1-based, arrival order),
-- 'i:<cid>' chunk_index of the last kept chunk (-1: none).
-- A chunk published without call_id goes out with the call_id it was filed under; a
-- completion without content is stored (and published) with the kept text as content.

-- Event types (SPEC §3, §10.2). The kind of each type: d = durable, t = terminal (durable, ends
-- the task), e = ephemeral (live only). A type's kind is looked up, in order:
--   1. KINDS below: the built-in types (a test checks this table against src/events/registry.ts);
--   2. the pairs (type, kind) the caller appended after the events' arguments (the gateway
--      declares its custom types this way, which also works on a Redis Cluster);
--   3. on a standalone Redis (PUBLISH), the hash <prefix>:registry (type -> kind) that every
--      gateway writes at start: custom types published from any language are accepted. On a
--      Cluster that key lives in another slot, so callers there declare custom kinds (2).
-- Any other type is refused with TS_UNKNOWN_TYPE.
local KINDS = {
  WorkflowStarted = 'd', WorkflowCompleted = 't', WorkflowFailed = 't', WorkflowCancelled = 't',
  WorkflowLLMCallStarted = 'd', WorkflowLLMCallChunk = 'e', WorkflowLLMCallCompleted = 'd',
  WorkflowToolCallStarted = 'd', WorkflowToolCallCompleted = 'd',
  WorkflowBudgetWarning = 'd', WorkflowBudgetExceeded = 'd',
  WorkflowPaused = 'd', WorkflowResumed = 'd',
  WorkflowStepStarted = 'd', WorkflowStepCompleted = 'd',
}

local function fail(code, message)
  return redis.error_reply('TS_' .. code .. ' ' .. message)
end

local function valid_id(text)
  return type(text) == 'string' and #text >= 1 and #text <= 128 and string.find(text, '^[%w%._:%-]+$') ~= nil
end

-- ISO-8601 UTC time of a Unix time in milliseconds (days-to-civil, proleptic Gregorian)
local function iso_time(ms)
  local seconds = math.floor(ms / 1000)
  local days = math.floor(seconds / 86400)
  local rest = seconds - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(rest / 3600), math.floor(rest % 3600 / 60), rest % 60, ms % 1000)
end

local log_key, channel = KEYS[1], KEYS[2]
local task_id = log_key and string.match(log_key, '{([^}]*)}:log$')
if not valid_id(task_id) then return fail('BAD_ARGS', 'KEYS[1] must be <prefix>:{<taskId>}:log with a valid taskId') end
if channel ~= string.sub(log_key, 1, -4) .. 'live' then return fail('BAD_ARGS', 'KEYS[2] must be the live channel of KEYS[1]') end
local agent_id = ARGV[1]
if not valid_id(agent_id) then return fail('BAD_ARGS', 'agentId must be 1-128 characters of [A-Za-z0-9._:-]') end
local inflight_key = KEYS[3]
if inflight_key ~= string.sub(log_key, 1, -4) .. 'inflight' then
  return fail('BAD_ARGS', 'KEYS[3] must be the in-flight hash of KEYS[1] (<prefix>:{<taskId>}:inflight)')
end
local max_len, retention, idem_ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local publish = ARGV[5]
local inflight_ttl, idle_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local count = tonumber(ARGV[8])
if not (max_len and retention and idem_ttl and inflight_ttl and idle_ttl and idle_ttl >= 0 and count and count >= 1) or
    (publish ~= 'PUBLISH' and publish ~= 'SPUBLISH') then
  return fail('BAD_ARGS', 'expected agentId, HISTORY_MAX, RETENTION_S, IDEMPOTENCY_S, PUBLISH|SPUBLISH, INFLIGHT_TTL_S, TASK_IDLE_TTL_S, N')
end
local declared_from = 9 + count * 4
if #ARGV < declared_from - 1 or (#ARGV - declared_from + 1) % 2 ~= 0 then
  return fail('BAD_ARGS', 'expected 4 arguments per event, then (type, kind) pairs')
end
local declared = {}
for i = declared_from, #ARGV, 2 do
  local kind = ARGV[i + 1]
  if kind ~= 'd' and kind ~= 't' and kind ~= 'e' then return fail('BAD_ARGS', 'the kind of ' .. ARGV[i] .. ' must be d, t or e') end
  declared[ARGV[i]] = kind
end
local registry_key = string.sub(log_key, 1, -#task_id - 7) .. 'registry'
local function kind_of(event_type)
  local kind = KINDS[event_type] or declared[event_type]
  if kind or publish ~= 'PUBLISH' then return kind end
  kind = redis.call('HGET', registry_key, event_type)
  if kind == 'd' or kind == 't' or kind == 'e' then
    declared[event_type] = kind
    return kind
  end
  return nil
end

-- The task belongs to the agent of its stored events, and nothing follows a terminal event.
local newest = redis.call('XREVRANGE', log_key, '+', '-', 'COUNT', 1)[1]
if newest then
  local fields = newest[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'agentId' and fields[i + 1] ~= agent_id then
      return fail('AGENT_MISMATCH', 'task ' .. task_id .. ' belongs to another agent')
    elseif fields[i] == 'type' and kind_of(fields[i + 1]) == 't' then
      return fail('TASK_ENDED', 'task ' .. task_id .. ' has ended; nothing can be appended after ' .. newest[1])
    end
  end
end

-- Validate every event before writing any (all-or-nothing).
local events = {}
for n = 1, count do
  local base = 8 + (n - 1) * 4
  local event_type, data, time, key_index = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], tonumber(ARGV[base + 4])
  local kind = kind_of(event_type)
  if not kind then return fail('UNKNOWN_TYPE', 'event ' .. n .. ': unknown event type ' .. event_type) end
  local ok, decoded = pcall(cjson.decode, data)
  if not ok or type(decoded) ~= 'table' or not string.find(data, '^%s*{') then
    return fail('BAD_DATA', 'event ' .. n .. ': data must be a JSON object')
  end
  if time ~= '' and not string.find(time, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*[Z%+%-][%d:]*$') then
    return fail('BAD_TIME', 'event ' .. n .. ': time must be ISO-8601')
  end
  if decoded.call_id ~= nil and decoded.call_id ~= cjson.null and type(decoded.call_id) ~= 'string' then
    return fail('BAD_DATA', 'event ' .. n .. ': data.call_id must be a string')
  end
  if not key_index or key_index < 0 or (key_index > 0 and not KEYS[key_index + 3]) then
    return fail('BAD_ARGS', 'event ' .. n .. ': idempotency key index out of range')
  end
  if kind == 't' and n < count then return fail('TASK_ENDED', 'event ' .. n .. ' is terminal and must be the last') end
  -- Raw CR/LF can only be whitespace between JSON tokens; dropping them keeps every event one SSE data line.
  events[n] = { type = event_type, kind = kind, data = (string.gsub(data, '[\r\n]', '')), decoded = decoded, time = time, key = key_index }
end

-- LLM calls in flight (see the header).
local open_calls
local function opened()
  if not open_calls then
    local text = redis.call('HGET', inflight_key, 'open')
    open_calls = text and cjson.decode(text) or {}
  end
  return open_calls
end
local function save_opened()
  if #open_calls == 0 then redis.call('HDEL', inflight_key, 'open')
  else redis.call('HSET', inflight_key, 'open', cjson.encode(open_calls)) end
end
-- data (a JSON object's text) with more fields first
local function with_fields(data, fields)
  local rest = string.sub(data, string.find(data, '{', 1, true) + 1)
  if string.find(rest, '^%s*}') then return '{' .. fields .. rest end
  return '{' .. fields .. ',' .. rest
end
local function named_call(decoded)
  return type(decoded.call_id) == 'string' and decoded.call_id or nil
end
-- The data a chunk or completion goes out with, keeping its chunks or ending its call.
local function file_in_call(event)
  local decoded = event.decoded
  local named = named_call(decoded)
  local open = opened()
  local cid = named or open[#open]
  if not cid then return event.data end
  if event.type == 'WorkflowLLMCallChunk' then
    local index = tonumber(redis.call('HGET', inflight_key, 'i:' .. cid) or '-1')
    if type(decoded.chunk_index) == 'number' and decoded.chunk_index > index then
      -- One field per chunk: keeping a long answer costs the same per chunk as a short one.
      local n = redis.call('HINCRBY', inflight_key, 'n:' .. cid, 1)
      redis.call('HSET', inflight_key, 'c:' .. cid .. ':' .. n, type(decoded.chunk) == 'string' and decoded.chunk or '',
        'i:' .. cid, decoded.chunk_index)
      if type(decoded.model) == 'string' then redis.call('HSETNX', inflight_key, 'm:' .. cid, decoded.model) end
      redis.call('HSETNX', inflight_key, 's:' .. cid, '')
      if redis.call('TTL', inflight_key) < 0 then redis.call('EXPIRE', inflight_key, inflight_ttl) end
    end
    if named then return event.data end
    return with_fields(event.data, '"call_id":' .. cjson.encode(cid))
  end
  local index = tonumber(redis.call('HGET', inflight_key, 'i:' .. cid) or '-1')
  local count = tonumber(redis.call('HGET', inflight_key, 'n:' .. cid) or '0')
  local parts = {}
  -- In batches: Lua's unpack has a stack limit.
  for first = 1, count, 1000 do
    local fields = {}
    for n = first, math.min(count, first + 999) do fields[#fields + 1] = 'c:' .. cid .. ':' .. n end
    for _, part in ipairs(redis.call('HMGET', inflight_key, unpack(fields))) do parts[#parts + 1] = part or '' end
    redis.call('HDEL', inflight_key, unpack(fields))
  end
  local text = index >= 0 and table.concat(parts) or nil
  redis.call('HDEL', inflight_key, 's:' .. cid, 'm:' .. cid, 'n:' .. cid, 'i:' .. cid)
  for i = #open, 1, -1 do
    if open[i] == cid then
      table.remove(open, i)
      save_opened()
      break
    end
  end
  local fields = {}
  if not named then fields[#fields + 1] = '"call_id":' .. cjson.encode(cid) end
  if decoded.content == nil and text and index >= 0 then fields[#fields + 1] = '"content":' .. cjson.encode(text) end
  if #fields == 0 then return event.data end
  return with_fields(event.data, table.concat(fields, ','))
end
local function start_call(event, id)
  local cid = named_call(event.decoded) or id
  redis.call('HSET', inflight_key, 's:' .. cid, id, 'n:' .. cid, 0, 'i:' .. cid, -1,
    'm:' .. cid, type(event.decoded.model) == 'string' and event.decoded.model or '')
  local open = opened()
  open[#open + 1] = cid
  save_opened()
  redis.call('EXPIRE', inflight_key, inflight_ttl)
end

local now = redis.call('TIME')
local now_time = iso_time(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local ids = {}
local prev = newest and newest[1] or '0-0'
for n, event in ipairs(events) do
  local key = event.key > 0 and KEYS[event.key + 3] or nil
  local seen = key and redis.call('GET', key)
  if seen then
    ids[n] = seen
  else
    local time = event.time ~= '' and event.time or now_time
    local id = ''
    if event.type == 'WorkflowLLMCallChunk' or event.type == 'WorkflowLLMCallCompleted' then event.data = file_in_call(event) end
    if event.kind ~= 'e' then
      id = redis.call('XADD', log_key, 'MAXLEN', '~', max_len, '*',
        'type', event.type, 'agentId', agent_id, 'time', time, 'data', event.data)
      if key then redis.call('SET', key, id, 'EX', idem_ttl) end
      if event.type == 'WorkflowLLMCallStarted' then start_call(event, id) end
      if event.kind == 't' then
        redis.call('EXPIRE', log_key, retention)
        redis.call('DEL', inflight_key)
        open_calls = {}
      end
    end
    local head = '{'
    if id ~= '' then
      head = '{"id":"' .. id .. '","prev":"' .. prev .. '",'
      prev = id
    end
    redis.call(publish, channel, head .. '"type":"' .. event.type .. '","agentId":"' .. agent_id ..
      '","taskId":"' .. task_id .. '","time":"' .. time .. '","data":' .. event.data .. '}')
    ids[n] = id
  end
end
-- Idle expiry of a task still running (a terminal event has set RETENTION_S instead).
if idle_ttl > 0 and events[count].kind ~= 't' then redis.call('EXPIRE', log_key, idle_ttl) end
return ids
