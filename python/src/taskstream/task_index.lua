-- taskstream: record an append in the task index (SPEC §5, §9.1). A separate call
-- after append.lua, because the index lives in another cluster slot than the task.
--
-- KEYS[1]  the recent-task index        <prefix>:tasks           sorted set agentId/taskId -> last event time (ms)
-- KEYS[2]  the status of each indexed   {<prefix>:tasks}:status  hash agentId/taskId -> "<last id> <status>"
--          task (same slot as KEYS[1] through its hash tag)
-- ARGV[1]  agentId/taskId
-- ARGV[2]  now, in ms
-- ARGV[3]  TASK_INDEX_MAX   the index keeps the newest this many tasks
-- ARGV[4]  the id of the last event the append stored ('' when it stored none: ephemeral only)
-- ARGV[5]  the status that append set ('' when it set none), one of
--          running | paused | completed | failed | cancelled
--
-- The status follows the fold of SPEC 9.1: a terminal event ends the task, WorkflowPaused pauses it,
-- WorkflowResumed resumes it, any other event leaves 'paused' as it is and otherwise means 'running'.
-- Only an append newer than the recorded one changes the status, so two publishers whose index
-- updates cross cannot put an older status back.

local member, now, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local last_id, set_status = ARGV[4], ARGV[5]

redis.call('ZADD', KEYS[1], now, member)
local excess = redis.call('ZCARD', KEYS[1]) - max
if excess > 0 then
  for _, gone in ipairs(redis.call('ZRANGE', KEYS[1], 0, excess - 1)) do
    redis.call('HDEL', KEYS[2], gone)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end

if last_id == '' then return 0 end

local function parse_id(text)
  local ms, seq = string.match(text, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local current = redis.call('HGET', KEYS[2], member)
local status = 'running'
if current then
  local recorded, recorded_status = string.match(current, '^(%S+) (%a+)$')
  if recorded then
    local ms, seq = parse_id(last_id)
    local old_ms, old_seq = parse_id(recorded)
    if old_ms and (ms < old_ms or (ms == old_ms and seq <= old_seq)) then return 0 end
    if recorded_status == 'paused' then status = 'paused' end
  end
end
if set_status ~= '' then status = set_status end
redis.call('HSET', KEYS[2], member, last_id .. ' ' .. status)
return 1
