-- wrk script for every benchmark scenario.
--
--   wrk -s bench/lua/scenario.lua <base url> -- <mode> <token> <min id> <max id> <run tag> [path] [cookie] [pages]
--
-- mode: detail | list | search | create | mix | admin | admin_search | get (plain GET of [path], for the ceilings)
-- [pages]: list and admin pages are picked among the first [pages] only (0 or missing: every seeded page).
-- Every request carries "Authorization: Bearer <token>" (unless token is "-") and "Cookie: <cookie>"
-- (unless cookie is "-" or missing).
-- create: names are "bench <run tag> t<thread> <counter> <random>", digits spelled as letters:
-- the run tag is unique per wrk run and the thread id + counter per request, so names (and
-- slugs) never collide, and no search term (a number) matches them.
-- mix: 90 % reads (60 % detail, 30 % list page), 10 % creates.
-- admin: the admin's changelist of companies (100 rows a page), a random page of the seeded ones,
-- with a logged-in session's cookie; admin_search: the changelist searched for a random number. wrk counts only 4xx/5xx as errors, and an admin page that
-- does not accept the session answers 302 (to the login form): in this mode response() counts the
-- 1xx/3xx answers too, reported as errors.redirect. Only in this mode: with a response() defined,
-- wrk hands every response's headers and body to Lua, a cost the fast API scenarios should not pay.
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (microseconds);
-- "sent" counts the requests sent, so sent - requests were still in flight when wrk stopped.

local thread_count = 0
local threads = {}

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   threads[thread_count] = thread
end

local mode, lo, hi, tag, plain_path
local counter = 0
local headers = {}
local pages = 500
local admin_pages = 100
redirects = 0 -- globals: done() reads each thread's counts with thread:get
sent = 0

local function count_redirects(status)
   if status < 200 or (status > 299 and status < 400) then redirects = redirects + 1 end
end

function init(args)
   mode = args[1]
   local token = args[2]
   lo = tonumber(args[3]) or 1
   hi = tonumber(args[4]) or 1
   tag = args[5] or tostring(os.time())
   plain_path = args[6] or "/"
   local cookie = args[7]
   pages = math.max(1, math.floor((hi - lo + 1) / 20))
   admin_pages = math.max(1, math.floor((hi - lo + 1) / 100))
   local cap = tonumber(args[8]) or 0
   if cap > 0 then
      pages = math.min(pages, cap)
      admin_pages = math.min(admin_pages, cap)
   end
   if token and token ~= "-" then
      headers["Authorization"] = "Bearer " .. token
   end
   if cookie and cookie ~= "-" then
      headers["Cookie"] = cookie
   end
   if mode == "admin" or mode == "admin_search" then
      response = count_redirects -- wrk looks for a global response() after init()
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

local function admin()
   return wrk.format("GET", "/admin/companies/company/?p=" .. math.random(1, admin_pages), headers)
end

local function admin_search()
   return wrk.format("GET", "/admin/companies/company/?q=" .. math.random(1, hi - lo + 1), headers)
end

local function get()
   return wrk.format("GET", plain_path, headers)
end

local modes = { detail = detail, list = list, search = search, create = create, mix = mix, admin = admin,
   admin_search = admin_search, get = get }

function request()
   sent = sent + 1
   return modes[mode]()
end

function done(summary, latency, requests)
   local e = summary.errors
   local redirected, sent_total = 0, -1 -- wrk calls request() once before the run, to check what it returns
   for _, thread in ipairs(threads) do
      redirected = redirected + (thread:get("redirects") or 0)
      sent_total = sent_total + (thread:get("sent") or 0)
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "sent": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "redirect": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, sent_total, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout, redirected,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
