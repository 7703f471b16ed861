-- wrk script for every benchmark scenario.
--
--   wrk -s bench/lua/scenario.lua <base url> -- <mode> <token> <min id> <max id> <run tag> [path]
--
-- mode: detail | list | search | create | mix | get (plain GET of [path], for the ceilings)
-- Every request carries "Authorization: Bearer <token>" (unless token is "-").
-- create: names are "bench <run tag> t<thread> <counter> <random>", digits spelled as letters:
-- the run tag is unique per wrk run and the thread id + counter per request, so names (and
-- slugs) never collide, and no search term (a number) matches them.
-- mix: 90 % reads (60 % detail, 30 % list page), 10 % creates.
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (microseconds).

local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
end

local mode, lo, hi, tag, plain_path
local counter = 0
local headers = {}
local pages = 500

function init(args)
   mode = args[1]
   local token = args[2]
   lo = tonumber(args[3]) or 1
   hi = tonumber(args[4]) or 1
   tag = args[5] or tostring(os.time())
   plain_path = args[6] or "/"
   pages = math.max(1, math.floor((hi - lo + 1) / 20))
   if token and token ~= "-" then
      headers["Authorization"] = "Bearer " .. token
   end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

local function detail()
   return wrk.format("GET", "/api/companies/" .. math.random(lo, hi), headers)
end

local function list()
   return wrk.format("GET", "/api/companies?page_size=20&page=" .. math.random(1, pages), headers)
end

local function search()
   -- a number matches a handful of seeded names ("Bench Company 01234") and e-mails ("c1234@...")
   return wrk.format("GET", "/api/companies?page_size=20&search=" .. math.random(1, hi - lo + 1), headers)
end

local post_headers = nil

-- Digits spelled as letters (0 -> a ... 9 -> j): created companies stay unique but never
-- match a search scenario's number, so search measures the same seeded rows in every run.
local function letters(text)
   return (text:gsub("%d", function(d) return string.char(97 + tonumber(d)) end))
end

local function create()
   if post_headers == nil then
      post_headers = { ["Content-Type"] = "application/json" }
      for k, v in pairs(headers) do post_headers[k] = v end
   end
   counter = counter + 1
   local unique = string.format("%s t%d %d %d", tag, tid or 0, counter, math.random(0, 999999))
   local body = string.format('{"name": "bench %s", "contact_email": "b%s@bench.example.com"}',
      letters(unique), letters(string.format("%d-%d-%s", tid or 0, counter, tag)))
   return wrk.format("POST", "/api/companies", post_headers, body)
end

local function mix()
   local r = math.random(1, 100)
   if r <= 60 then return detail() end
   if r <= 90 then return list() end
   return create()
end

local function get()
   return wrk.format("GET", plain_path, headers)
end

local modes = { detail = detail, list = list, search = search, create = create, mix = mix, get = get }

function request()
   return modes[mode]()
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
