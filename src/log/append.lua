-- taskstream: append events to a task's log and notify its live channel (SPEC §5).
-- One atomic call, so a publisher in any language can use it.
--
-- KEYS[1]    the task's log stream     <prefix>:{<taskId>}:log
-- KEYS[2]    the task's live channel   <prefix>:{<taskId>}:live
-- KEYS[3..]  idempotency keys          <prefix>:{<taskId>}:idem:<key>, one per event that has a key
-- ARGV[1]    agentId
-- ARGV[2]    HISTORY_MAX     approximate number of entries the log keeps (XADD MAXLEN ~)
-- ARGV[3]    RETENTION_S     the log expires this long after a terminal event
-- ARGV[4]    IDEMPOTENCY_S   how long an idempotency key is remembered
-- ARGV[5]    PUBLISH on a standalone Redis, SPUBLISH on a Redis Cluster
-- ARGV[6]    N, the number of events; then four arguments per event:
--            type, data (a JSON object), time (ISO-8601, or '' for now),
--            index of its idempotency key in KEYS (0 = none)
-- ARGV[7+4N] TASK_IDLE_TTL_S (optional; issue 16): the log of a task that has not ended expires
--            this long after its last append, so tasks that never end do not stay forever.
--            Absent or 0: no idle expiry.
--
-- Returns one id per event ('' for an ephemeral event, which is published but not stored).
-- Each stored event is published with "prev", the id of the stored event before it, so a
-- listener that missed a message (a reconnect, a failover) sees the gap and reads the log.
-- Fails with 'TS_<CODE> <message>' and changes nothing when any event is invalid.

-- kind of each type: d = durable, t = terminal (durable, ends the task), e = ephemeral (live only)
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
local max_len, retention, idem_ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local publish = ARGV[5]
local count = tonumber(ARGV[6])
if not (max_len and retention and idem_ttl and count and count >= 1) or (publish ~= 'PUBLISH' and publish ~= 'SPUBLISH') then
  return fail('BAD_ARGS', 'expected agentId, HISTORY_MAX, RETENTION_S, IDEMPOTENCY_S, PUBLISH|SPUBLISH, N')
end
if #ARGV ~= 6 + count * 4 and #ARGV ~= 7 + count * 4 then return fail('BAD_ARGS', 'expected 4 arguments per event') end
local idle_ttl = tonumber(ARGV[7 + count * 4] or '0')
if not idle_ttl or idle_ttl < 0 then return fail('BAD_ARGS', 'TASK_IDLE_TTL_S must be a number of seconds') end

-- The task belongs to the agent of its stored events, and nothing follows a terminal event.
local newest = redis.call('XREVRANGE', log_key, '+', '-', 'COUNT', 1)[1]
if newest then
  local fields = newest[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'agentId' and fields[i + 1] ~= agent_id then
      return fail('AGENT_MISMATCH', 'task ' .. task_id .. ' belongs to another agent')
    elseif fields[i] == 'type' and KINDS[fields[i + 1]] == 't' then
      return fail('TASK_ENDED', 'task ' .. task_id .. ' has ended; nothing can be appended after ' .. newest[1])
    end
  end
end

-- Validate every event before writing any (all-or-nothing).
local events = {}
for n = 1, count do
  local base = 6 + (n - 1) * 4
  local event_type, data, time, key_index = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], tonumber(ARGV[base + 4])
  local kind = KINDS[event_type]
  if not kind then return fail('UNKNOWN_TYPE', 'event ' .. n .. ': unknown event type ' .. event_type) end
  local ok, decoded = pcall(cjson.decode, data)
  if not ok or type(decoded) ~= 'table' or not string.find(data, '^%s*{') then
    return fail('BAD_DATA', 'event ' .. n .. ': data must be a JSON object')
  end
  if time ~= '' and not string.find(time, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*[Z%+%-][%d:]*$') then
    return fail('BAD_TIME', 'event ' .. n .. ': time must be ISO-8601')
  end
  if not key_index or key_index < 0 or (key_index > 0 and not KEYS[key_index + 2]) then
    return fail('BAD_ARGS', 'event ' .. n .. ': idempotency key index out of range')
  end
  if kind == 't' and n < count then return fail('TASK_ENDED', 'event ' .. n .. ' is terminal and must be the last') end
  -- Raw CR/LF can only be whitespace between JSON tokens; dropping them keeps every event one SSE data line.
  events[n] = { type = event_type, kind = kind, data = (string.gsub(data, '[\r\n]', '')), time = time, key = key_index }
end

local now = redis.call('TIME')
local now_time = iso_time(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local ids = {}
local prev = newest and newest[1] or '0-0'
for n, event in ipairs(events) do
  local key = event.key > 0 and KEYS[event.key + 2] or nil
  local seen = key and redis.call('GET', key)
  if seen then
    ids[n] = seen
  else
    local time = event.time ~= '' and event.time or now_time
    local id = ''
    if event.kind ~= 'e' then
      id = redis.call('XADD', log_key, 'MAXLEN', '~', max_len, '*',
        'type', event.type, 'agentId', agent_id, 'time', time, 'data', event.data)
      if key then redis.call('SET', key, id, 'EX', idem_ttl) end
      if event.kind == 't' then redis.call('EXPIRE', log_key, retention) end
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
