"""The Lua scripts that make shared state atomic across processes.

Each runs inside Redis as one step, so no two routers interleave between its reads
and writes. Numbers go back as strings: Redis turns Lua numbers into integers.
Rate limits read Redis's own clock (`TIME`), so hosts with skewed clocks agree.
"""

from __future__ import annotations

# KEYS: budget counter hashes. ARGV: rid, amount, expires_at, now, ttl, then per key
# its limit and a seed (this process's total, for a counter Redis lost or never had).
# A counter hash holds `spent`, `reserved` and `r:<rid>` (each open reservation's
# amount); `<key>:r` is a sorted set of rids by expiry, so a crashed process's
# reservations stop counting once they expire.
BUDGET_RESERVE = """
local rid, amount = ARGV[1], tonumber(ARGV[2])
local exp, now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out, ok = {}, 1
for i, key in ipairs(KEYS) do
  local zkey = key .. ':r'
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'spent', ARGV[5 + 2 * i], 'reserved', 0)
  end
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
  for _, id in ipairs(expired) do
    local amt = tonumber(redis.call('HGET', key, 'r:' .. id) or '0')
    redis.call('HINCRBYFLOAT', key, 'reserved', -amt)
    redis.call('HDEL', key, 'r:' .. id)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now) end
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local reserved = math.max(tonumber(redis.call('HGET', key, 'reserved') or '0'), 0)
  if spent + reserved >= tonumber(ARGV[4 + 2 * i]) then ok = 0 end
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(reserved)
end
if ok == 1 then
  for _, key in ipairs(KEYS) do
    redis.call('HINCRBYFLOAT', key, 'reserved', amount)
    redis.call('HSET', key, 'r:' .. rid, amount)
    redis.call('ZADD', key .. ':r', exp, rid)
    redis.call('EXPIRE', key, ttl)
    redis.call('EXPIRE', key .. ':r', ttl)
  end
end
table.insert(out, 1, ok)
return out
"""

# KEYS: done-marker, then counter hashes. ARGV: rid, cost, ttl, seed1..seedN.
# Frees the reservation `rid` (if it is still there) and adds `cost`. The marker makes
# a replay (a batch sent again after its reply was lost) count once; it need outlive
# only the reconnection, so it lives an hour. A counter missing from
# Redis (a restart without persistence) is seeded from what this process knew.
BUDGET_COMMIT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 3600) == false then return 0 end
local rid, cost, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 2, #KEYS do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'spent', ARGV[2 + i], 'reserved', 0)
  end
  local amt = redis.call('HGET', key, 'r:' .. rid)
  if amt then
    redis.call('HINCRBYFLOAT', key, 'reserved', -tonumber(amt))
    redis.call('HDEL', key, 'r:' .. rid)
    redis.call('ZREM', key .. ':r', rid)
  end
  if cost ~= 0 then redis.call('HINCRBYFLOAT', key, 'spent', cost) end
  redis.call('EXPIRE', key, ttl)
end
return 1
"""

# KEYS: bucket hash. ARGV: rpm, tpm, tokens, mode (take | give | debt).
# take: both units or neither; returns seconds to wait ("0": taken). give: refund.
# debt: take without waiting (tokens beyond the estimate). Levels refill with TIME.
RATE_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm, n, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local function level(cap, f)
  local lvl = tonumber(redis.call('HGET', KEYS[1], f .. 'l') or cap)
  local last = tonumber(redis.call('HGET', KEYS[1], f .. 't') or now)
  return math.min(cap, lvl + math.max(now - last, 0) * cap / 60)
end
local r = rpm > 0 and level(rpm, 'r') or 0
local k = tpm > 0 and level(tpm, 't') or 0
local wait = 0
if mode == 'take' then
  if rpm > 0 and r < 1 then wait = (1 - r) * 60 / rpm end
  local need = math.min(n, tpm)
  if tpm > 0 and k < need then wait = math.max(wait, (need - k) * 60 / tpm) end
  if wait == 0 then
    r = r - 1
    k = k - math.min(n, tpm)
  end
elseif mode == 'give' then
  r = math.min(rpm, r + (ARGV[5] == '1' and 1 or 0))
  k = math.min(tpm, k + n)
else
  k = k - n
end
redis.call('HSET', KEYS[1], 'rl', r, 'rt', now, 'tl', k, 'tt', now)
redis.call('EXPIRE', KEYS[1], 3600)
return {tostring(wait), tostring(r), tostring(k)}
"""

# KEYS: breaker hash, failures zset, probe key. ARGV: op, failures, window, cooldown, token.
# The hash holds `until` (Redis time the circuit is open till), `why` and `opened`;
# no hash: closed. ops: fail | success | probe | release. Returns {state, until, why}.
BREAKER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op, limit = ARGV[1], tonumber(ARGV[2])
local window, cooldown, token = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local untilv = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local open = redis.call('EXISTS', KEYS[1]) == 1
local function trip(why)
  untilv = now + cooldown
  redis.call('HSET', KEYS[1], 'until', tostring(untilv), 'why', why)
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
  redis.call('EXPIRE', KEYS[1], math.ceil(cooldown * 4 + 3600))
  redis.call('DEL', KEYS[2], KEYS[3])
  open = true
end
local res = 'ok'
if op == 'fail' then
  if open then
    if now >= untilv then trip('probe failed') end
  else
    redis.call('ZADD', KEYS[2], now, token .. ':' .. tostring(now))
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
    redis.call('EXPIRE', KEYS[2], math.ceil(window) + 1)
    local n = redis.call('ZCARD', KEYS[2])
    if n >= limit then trip(n .. ' failures in ' .. ARGV[3] .. 's') end
  end
elseif op == 'success' then
  if open and now >= untilv then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    open = false
  end
elseif op == 'probe' then
  if open then
    if now < untilv then
      res = 'open'
    elseif redis.call('SET', KEYS[3], token, 'NX', 'PX',
                      math.floor(math.max(cooldown, 10) * 1000)) then
      res = 'probe'
    else
      res = 'busy'
    end
  end
elseif op == 'release' then
  if redis.call('GET', KEYS[3]) == token then redis.call('DEL', KEYS[3]) end
end
local why = open and (redis.call('HGET', KEYS[1], 'why') or '') or ''
return {res, open and tostring(untilv - now) or '', why}
"""

# KEYS: seen-marker, day list, day totals, days set. ARGV: row json, day, cost, model, rule.
USAGE_RECORD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 3600) == false then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[3], 'g', ARGV[3])
redis.call('HINCRBYFLOAT', KEYS[3], 'm:' .. ARGV[4], ARGV[3])
if ARGV[5] ~= '' then redis.call('HINCRBYFLOAT', KEYS[3], 'r:' .. ARGV[5], ARGV[3]) end
redis.call('SADD', KEYS[4], ARGV[2])
return 1
"""

# KEYS: rate bucket, then budget counter hashes. ARGV: rpm, tpm, tokens, then the
# arguments of BUDGET_RESERVE. The rate limit and the budget in one round trip: both
# are taken, or neither. Returns {verdict ('ok' | 'rate' | 'budget'), wait, rpm level,
# tpm level, spent1, reserved1, ...}.
ADMIT = """
local t = redis.call('TIME')
local tnow = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket = KEYS[1]
local b = redis.call('HMGET', bucket, 'rl', 'rt', 'tl', 'tt')
local function level(cap, lvl, last)
  lvl, last = tonumber(lvl or cap), tonumber(last or tnow)
  return math.min(cap, lvl + math.max(tnow - last, 0) * cap / 60)
end
local r = rpm > 0 and level(rpm, b[1], b[2]) or 0
local k = tpm > 0 and level(tpm, b[3], b[4]) or 0
local wait = 0
if rpm > 0 and r < 1 then wait = (1 - r) * 60 / rpm end
local need = math.min(n, tpm)
if tpm > 0 and k < need then wait = math.max(wait, (need - k) * 60 / tpm) end
if wait > 0 then return {'rate', tostring(wait), tostring(r), tostring(k)} end
local rid, amount = ARGV[4], tonumber(ARGV[5])
local exp, now, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local out, ok = {}, true
for i = 2, #KEYS do
  local key, zkey = KEYS[i], KEYS[i] .. ':r'
  local h = redis.call('HMGET', key, 'spent', 'reserved')
  if not h[1] then
    h = {ARGV[6 + 2 * i], '0'}
    redis.call('HSET', key, 'spent', h[1], 'reserved', 0)
  end
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
  if #expired > 0 then
    for _, id in ipairs(expired) do
      local amt = tonumber(redis.call('HGET', key, 'r:' .. id) or '0')
      h[2] = redis.call('HINCRBYFLOAT', key, 'reserved', -amt)
      redis.call('HDEL', key, 'r:' .. id)
    end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
  end
  local spent = tonumber(h[1])
  local reserved = math.max(tonumber(h[2]), 0)
  if spent + reserved >= tonumber(ARGV[5 + 2 * i]) then ok = false end
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(reserved)
end
if not ok then
  table.insert(out, 1, tostring(k))
  table.insert(out, 1, tostring(r))
  table.insert(out, 1, '0')
  table.insert(out, 1, 'budget')
  return out
end
for i = 2, #KEYS do
  local key = KEYS[i]
  redis.call('HINCRBYFLOAT', key, 'reserved', amount)
  redis.call('HSET', key, 'r:' .. rid, amount)
  redis.call('ZADD', key .. ':r', exp, rid)
  redis.call('EXPIRE', key, ttl)
  redis.call('EXPIRE', key .. ':r', ttl)
end
r = r - (rpm > 0 and 1 or 0)
k = k - need
redis.call('HSET', bucket, 'rl', r, 'rt', tnow, 'tl', k, 'tt', tnow)
redis.call('EXPIRE', bucket, 3600)
table.insert(out, 1, tostring(k))
table.insert(out, 1, tostring(r))
table.insert(out, 1, '0')
table.insert(out, 1, 'ok')
return out
"""

SCRIPTS = {
    "admit": ADMIT,
    "budget_reserve": BUDGET_RESERVE,
    "budget_commit": BUDGET_COMMIT,
    "rate_bucket": RATE_BUCKET,
    "breaker": BREAKER,
    "usage_record": USAGE_RECORD,
}
