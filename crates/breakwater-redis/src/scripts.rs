//! The two Lua scripts that make each store operation atomic, how their arguments are
//! written and how their answers are read.
//!
//! [`BREAKER`] runs one [`Op`] on a key's record hash by the rules of
//! [`breakwater_core::fleet::StoreRecord::apply`] (the tests run both on the same
//! random operations and compare), writes the hash back if anything changed, refreshes
//! its expiry, and publishes the record on the fleet's channel if a new epoch or a
//! longer cooldown came of it. [`BUDGET`] applies one [`BudgetPush`] by the rules of
//! [`breakwater_core::fleet::BudgetStore`]. Both refuse a hash written in another
//! format version: they answer `{"foreign", v}` and change nothing.

use std::time::Duration;

use breakwater_core::fleet::{
    BreakerRecord, BudgetPush, DecodeError, FORMAT_VERSION, FleetTime, Op, Reply, SharedState,
};
use redis::Value;

/// One operation on a breaker record: `KEYS[1]` the record hash; `ARGV` = op, now (ms),
/// three op arguments, channel, key name, expiry (ms).
pub const BREAKER: &str = r#"
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local a, b, c = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local f = redis.call('HMGET', key, 'v', 'epoch', 'state', 'until', 'cooldown', 'trips', 'probes', 'successes', 'lease')
if f[1] and f[1] ~= '1' then
  return {'foreign', f[1]}
end
local epoch = tonumber(f[2] or '0')
local state = f[3] or 'closed'
local till = tonumber(f[4] or '0')
local cooldown = tonumber(f[5] or '0')
local trips = tonumber(f[6] or '0')
local probes = tonumber(f[7] or '0')
local successes = tonumber(f[8] or '0')
local lease = tonumber(f[9] or '0')
local old = {epoch, state, till, cooldown, trips, probes, successes, lease}
local granted = 0
local function next_epoch(base)
  return math.max(epoch + 1, base + 1, now)
end
local function close(base)
  epoch = next_epoch(base)
  state = 'closed'
  trips = 0
  probes = 0
  successes = 0
  lease = 0
end
local half_open = state == 'open' and till <= now
if op == 'open' then
  if a >= epoch or state == 'closed' then
    epoch = next_epoch(a)
    state = 'open'
    till = b
    trips = trips + 1
    probes = 0
    successes = 0
    lease = 0
  end
elseif op == 'close' then
  if a >= epoch and state ~= 'closed' then close(a) end
elseif op == 'isolate' then
  if state ~= 'isolated' then
    epoch = next_epoch(a)
    state = 'isolated'
    probes = 0
    successes = 0
  end
elseif op == 'cooldown' then
  if a > cooldown then cooldown = a end
elseif op == 'claim' then
  if a == epoch and half_open then
    if now >= lease then probes = 0 end
    if probes < b then
      probes = probes + 1
      lease = now + c
      granted = 1
    end
  end
elseif op == 'release' then
  if a == epoch then probes = math.max(probes - b, 0) end
elseif op == 'succeeded' then
  if a == epoch and half_open then
    successes = successes + 1
    if successes >= math.max(b, 1) then close(a) end
  end
elseif op ~= 'read' then
  return redis.error_reply('breakwater: unknown op ' .. op)
end
if state ~= 'open' then till = 0 end
local new = {epoch, state, till, cooldown, trips, probes, successes, lease}
local dirty = false
for i = 1, #new do
  if new[i] ~= old[i] then dirty = true end
end
local function n(x) return string.format('%.0f', x) end
if dirty then
  redis.call('HSET', key, 'v', '1', 'epoch', n(epoch), 'state', state, 'until', n(till),
    'cooldown', n(cooldown), 'trips', n(trips), 'probes', n(probes),
    'successes', n(successes), 'lease', n(lease))
  redis.call('PEXPIRE', key, ARGV[8])
end
local changed = 0
if epoch ~= old[1] or cooldown > old[4] then
  changed = 1
  redis.call('PUBLISH', ARGV[6], '1|' .. n(epoch) .. '|' .. state .. '|' .. n(till) .. '|' ..
    n(cooldown) .. '|' .. n(trips) .. '|' .. ARGV[7])
end
return {granted, changed, n(epoch), state, n(till), n(cooldown), n(trips)}
"#;

/// One budget push: `KEYS[1]` the budget hash; `ARGV` = replica, window, windows
/// (10), expiry (ms), then window/contribution pairs. Answers the totals of the
/// replica's windows, oldest first.
pub const BUDGET: &str = r#"
local key = KEYS[1]
local rid = ARGV[1]
local window = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
local v = redis.call('HGET', key, 'v')
if v and v ~= '1' then
  return {'foreign', v}
end
local function n(x) return string.format('%.0f', x) end
local cur = tonumber(redis.call('HGET', key, 'cur') or '0')
local oldest_before = cur - span + 1
if window > cur then cur = window end
local oldest = cur - span + 1
if oldest > oldest_before then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local field = all[i]
    local w = string.match(field, '^t:(%d+)$')
    if w and tonumber(w) < oldest then redis.call('HDEL', key, field) end
    if string.sub(field, 1, 2) == 'c:' then
      local kept = {}
      for w2, u2 in string.gmatch(all[i + 1], '(%d+):(%-?%d+)') do
        if tonumber(w2) >= oldest then table.insert(kept, w2 .. ':' .. u2) end
      end
      if #kept == 0 then
        redis.call('HDEL', key, field)
      else
        redis.call('HSET', key, field, table.concat(kept, ','))
      end
    end
  end
end
local mine = {}
local previous = redis.call('HGET', key, 'c:' .. rid)
if previous then
  for w2, u2 in string.gmatch(previous, '(%d+):(%-?%d+)') do mine[w2] = tonumber(u2) end
end
for i = 5, #ARGV, 2 do
  local w = tonumber(ARGV[i])
  local u = tonumber(ARGV[i + 1])
  if w >= oldest and w <= cur then
    local ws = n(w)
    local d = u - (mine[ws] or 0)
    if d ~= 0 then redis.call('HINCRBY', key, 't:' .. ws, n(d)) end
    mine[ws] = u
  end
end
local parts = {}
for ws, u in pairs(mine) do
  if tonumber(ws) >= oldest then table.insert(parts, ws .. ':' .. n(u)) end
end
redis.call('HSET', key, 'v', '1', 'cur', n(cur), 'c:' .. rid, table.concat(parts, ','))
redis.call('PEXPIRE', key, ARGV[4])
local out = {}
for w = window - span + 1, window do
  local t = redis.call('HGET', key, 't:' .. n(w))
  table.insert(out, t or '0')
end
return out
"#;

/// The `ARGV` of [`BREAKER`] for `op` (all but channel, name and expiry).
#[must_use]
pub fn breaker_args(op: &Op, now: FleetTime) -> [String; 5] {
    let (name, a, b, c): (&str, u64, u64, u64) = match *op {
        Op::Open { base, until } => ("open", base, until.as_millis(), 0),
        Op::Close { base } => ("close", base, 0, 0),
        Op::Isolate { base } => ("isolate", base, 0, 0),
        Op::CoolDown { until } => ("cooldown", until.as_millis(), 0, 0),
        Op::Claim {
            epoch,
            limit,
            lease,
        } => ("claim", epoch, u64::from(limit), millis_up(lease)),
        Op::Release { epoch, probes } => ("release", epoch, u64::from(probes), 0),
        Op::ProbeSucceeded { epoch, close_after } => {
            ("succeeded", epoch, u64::from(close_after), 0)
        }
        Op::Read => ("read", 0, 0, 0),
    };
    [
        name.to_owned(),
        now.as_millis().to_string(),
        a.to_string(),
        b.to_string(),
        c.to_string(),
    ]
}

/// Whole milliseconds, rounded up (as [`FleetTime::saturating_add`] counts a lease).
fn millis_up(span: Duration) -> u64 {
    u64::try_from(span.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Why an answer could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// The record is of another format version.
    Decode(DecodeError),
    /// Not the shape the script answers.
    Shape(&'static str),
}

/// Reads [`BREAKER`]'s answer.
pub fn breaker_reply(value: &Value) -> Result<Reply, AnswerError> {
    let items = array(value)?;
    foreign(items)?;
    let [granted, changed, epoch, state, until, cooldown, trips] = items else {
        return Err(AnswerError::Shape("breaker answer"));
    };
    let until = FleetTime::from_millis(number(until)?);
    let state = match text(state)?.as_str() {
        "closed" => SharedState::Closed,
        "open" => SharedState::Open { until },
        "isolated" => SharedState::Isolated,
        _ => return Err(AnswerError::Decode(DecodeError::Malformed("state"))),
    };
    Ok(Reply {
        record: BreakerRecord {
            epoch: number(epoch)?,
            state,
            cooldown: FleetTime::from_millis(number(cooldown)?),
            trips: u32::try_from(number(trips)?).map_err(|_| AnswerError::Shape("trips"))?,
        },
        granted: number(granted)? == 1,
        changed: number(changed)? == 1,
    })
}

/// The `ARGV` of [`BUDGET`] for `push` (expiry included).
#[must_use]
pub fn budget_args(push: &BudgetPush, windows: u64, expire_ms: u64) -> Vec<String> {
    let mut args = vec![
        push.replica.to_string(),
        push.window.to_string(),
        windows.to_string(),
        expire_ms.to_string(),
    ];
    for (w, units) in &push.contributions {
        args.push(w.to_string());
        args.push(units.to_string());
    }
    args
}

/// Reads [`BUDGET`]'s answer for a push whose current window is `window`: the totals
/// per window, oldest first.
pub fn budget_reply(
    value: &Value,
    window: u64,
    windows: u64,
) -> Result<Vec<(u64, i64)>, AnswerError> {
    let items = array(value)?;
    foreign(items)?;
    let first = window.saturating_sub(windows.saturating_sub(1));
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let total = match item {
                Value::Int(n) => *n,
                other => text(other)?
                    .parse()
                    .map_err(|_| AnswerError::Shape("budget total"))?,
            };
            Ok((first + i as u64, total))
        })
        .collect()
}

fn array(value: &Value) -> Result<&[Value], AnswerError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(AnswerError::Shape("not an array")),
    }
}

fn foreign(items: &[Value]) -> Result<(), AnswerError> {
    if let [tag, version] = items
        && text(tag).is_ok_and(|t| t == "foreign")
    {
        let version = text(version)?;
        let v = version.parse().unwrap_or(u32::MAX);
        debug_assert_ne!(v, FORMAT_VERSION);
        return Err(AnswerError::Decode(DecodeError::Foreign(v)));
    }
    Ok(())
}

fn text(value: &Value) -> Result<String, AnswerError> {
    match value {
        Value::BulkString(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        _ => Err(AnswerError::Shape("not a string")),
    }
}

fn number(value: &Value) -> Result<u64, AnswerError> {
    match value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| AnswerError::Shape("negative")),
        other => {
            let text = text(other)?;
            let text = text.strip_suffix(".0").unwrap_or(&text);
            text.parse().map_err(|_| AnswerError::Shape("not a number"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn arguments_name_the_op_and_its_numbers() {
        let op = Op::Claim {
            epoch: 7,
            limit: 3,
            lease: Duration::from_micros(1500),
        };
        assert_eq!(
            breaker_args(&op, FleetTime::from_millis(9)),
            ["claim", "9", "7", "3", "2"]
        );
        assert_eq!(breaker_args(&Op::Read, FleetTime::ZERO)[0], "read");
        let push = BudgetPush {
            replica: 4,
            window: 20,
            window_nanos: 1,
            contributions: vec![(19, -5), (20, 7)],
        };
        assert_eq!(
            budget_args(&push, 10, 2000),
            ["4", "20", "10", "2000", "19", "-5", "20", "7"]
        );
    }

    #[test]
    fn answers_are_read_and_foreign_ones_refused() {
        let answer = Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            bulk("1700000000123"),
            bulk("open"),
            bulk("1700000005000"),
            bulk("0"),
            bulk("2"),
        ]);
        let reply = breaker_reply(&answer).unwrap();
        assert!(reply.granted && !reply.changed);
        assert_eq!(
            reply.record.state,
            SharedState::Open {
                until: FleetTime::from_millis(1_700_000_005_000)
            }
        );
        let foreign = Value::Array(vec![bulk("foreign"), bulk("2")]);
        assert_eq!(
            breaker_reply(&foreign),
            Err(AnswerError::Decode(DecodeError::Foreign(2)))
        );
        assert_eq!(
            budget_reply(&foreign, 5, 10),
            Err(AnswerError::Decode(DecodeError::Foreign(2)))
        );
        assert!(breaker_reply(&Value::Nil).is_err());
        assert!(breaker_reply(&Value::Array(vec![bulk("x")])).is_err());
        let totals = Value::Array(vec![bulk("3"), Value::Int(-2)]);
        assert_eq!(budget_reply(&totals, 11, 2), Ok(vec![(10, 3), (11, -2)]));
    }
}
