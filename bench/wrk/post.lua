-- wrk script of `make bench`: POST a JSON body to the URL given to wrk.
--
-- Environment:
--   BENCH_BODY      file holding the request body (required)
--   BENCH_KEY       client key, sent as Authorization: Bearer
--   BENCH_MODE      X-Bench-Mode header for the mock (sse, ttfb, idle)
--   BENCH_HEADERS   more headers, "Name: value|Name: value"
--   BENCH_DELAY_MS  > 0: fixed-rate mode. After each response the
--                   connection waits a random 0.5x..1.5x this many ms
--                   before its next request (wrk's delay() hook), so C
--                   connections offer about C * 1000 / BENCH_DELAY_MS
--                   requests per second whatever the server's speed; the
--                   latency wrk records starts when a request is written,
--                   so the wait is not part of it.
--
-- done() prints one machine-readable line:
--   WRK requests=... duration_us=... bytes=... err_...=... lat_p50_us=...

local f = assert(io.open(assert(os.getenv("BENCH_BODY"), "BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()

wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")

local mode = os.getenv("BENCH_MODE")
if mode and mode ~= "" then
    wrk.headers["X-Bench-Mode"] = mode
end

for h in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
    local name, value = h:match("^%s*([^:]+):%s*(.*)$")
    if name then
        wrk.headers[name] = value
    end
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

if delay_ms > 0 then
    local lo = math.max(1, math.floor(delay_ms / 2))
    local hi = math.max(lo, math.floor(delay_ms * 3 / 2))

    function init(args)
        math.randomseed(os.time())
    end

    function delay()
        return math.random(lo, hi)
    end
end

function done(s, lat, req)
    local e = s.errors
    io.write(string.format(
        "WRK requests=%d duration_us=%d bytes=%d err_connect=%d "
        .. "err_read=%d err_write=%d err_status=%d err_timeout=%d "
        .. "lat_mean_us=%.1f lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d "
        .. "lat_max_us=%d\n",
        s.requests, s.duration, s.bytes, e.connect, e.read, e.write,
        e.status, e.timeout, lat.mean, lat:percentile(50),
        lat:percentile(90), lat:percentile(99), lat.max))
end
