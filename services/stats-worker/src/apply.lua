local prefix = ARGV[1]
local offset = tonumber(ARGV[2])
local legacy_offset = tonumber(ARGV[3])
local block = ARGV[4]
local cap = tonumber(ARGV[5])
local first_op = 5
local nops = #KEYS - 4
local expected = { INCRBYFLOAT = 'string', INCRBY = 'string', LPUSH = 'list', SADD = 'set', COUNT = 'string' }

local function keyname(key, infix)
  if infix == '' then return key end
  return prefix .. infix .. string.sub(key, #prefix + 1)
end

local function usable(key, command)
  local kind = redis.call('TYPE', key).ok
  if kind == 'none' then return true end
  if kind ~= expected[command] then return false end
  if kind == 'string' and tonumber(redis.call('GET', key)) == nil then return false end
  return true
end

local function bitmap_usable(key)
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'none' and kind ~= 'string' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. kind)
  end
  return nil
end

local function apply(infix)
  local bitmap = keyname(KEYS[2], infix)
  local legacy = keyname(KEYS[3], infix)
  local blocks = keyname(KEYS[4], infix)
  local wrong = bitmap_usable(bitmap) or bitmap_usable(legacy)
  if wrong then return wrong end
  if redis.call('GETBIT', bitmap, offset) == 1 then return 0 end
  -- Facts applied by earlier versions (GETBIT past a string's end reads 0, allocates nothing).
  if legacy_offset >= 0 and redis.call('GETBIT', legacy, legacy_offset) == 1 then return 0 end
  local kind = redis.call('TYPE', blocks).ok
  if kind ~= 'none' and kind ~= 'set' then
    return redis.error_reply('WRONGTYPE ' .. blocks .. ' is a ' .. kind)
  end
  for i = 1, nops do
    local key = keyname(KEYS[i + 4], infix)
    local command = ARGV[first_op + 2 * i - 1]
    if not usable(key, command) then
      return redis.error_reply('WRONGTYPE ' .. key .. ' cannot take ' .. command)
    end
  end
  for i = 1, nops do
    local key = keyname(KEYS[i + 4], infix)
    local command = ARGV[first_op + 2 * i - 1]
    local argument = ARGV[first_op + 2 * i]
    if command == 'LPUSH' then
      redis.call('LPUSH', key, argument)
      redis.call('LTRIM', key, 0, cap - 1)
    elseif command == 'COUNT' then
      if redis.call('EXISTS', key) == 0 then
        redis.call('SET', key, redis.call('LLEN', prefix .. infix .. argument))
      end
      redis.call('INCRBY', key, 1)
    else
      redis.call(command, key, argument)
    end
  end
  redis.call('SETBIT', bitmap, offset, 1)
  redis.call('SADD', blocks, block)
  return 1
end

local applied = apply('')
if type(applied) == 'table' then return applied end
local infix = redis.call('GET', KEYS[1])
if infix then apply(infix) end
return applied
