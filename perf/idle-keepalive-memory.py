# Driver for perf/idle-keepalive-memory (run it through that script, which builds and starts the proxy).
#
# Runs a loopback HTTP/1.1 origin in this process, opens keep-alive client connections to the proxy,
# sends one forwarded GET on each, reads the whole response, leaves the connection open and idle, and
# reads the proxy's memory from /proc once it has settled. Stages are cumulative within one proxy
# process: stage sizes "2000,2000" mean open 2,000, measure, open 2,000 more, measure.
#
# Prints one "result key value" line per figure (parsed by the bash wrapper) and progress on stderr.
import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request

BODY = b"x" * 1024


def proc_kib(pid, field, path="status"):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def memory(pid):
    return {
        "rss_kib": proc_kib(pid, "VmRSS"),
        "anon_kib": proc_kib(pid, "RssAnon"),
        "hwm_kib": proc_kib(pid, "VmHWM"),
        "private_dirty_kib": proc_kib(pid, "Private_Dirty", "smaps_rollup"),
        "threads": proc_kib(pid, "Threads"),
    }


def scrape(stats_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError as e:
        return f"# scrape failed: {e}"


def metric(text, name):
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def gc_lines(text):
    # The sidecar exports no GC figures today; pass through any it gains (dotnet_gc_*, *_gc_heap_*, ...).
    return [l for l in text.splitlines() if not l.startswith("#") and re.search(r"gc|heap|managed_memory", l, re.I)]


async def origin_handler(reader, writer, close_upstream):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            conn = b"close" if close_upstream else b"keep-alive"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n"
                         % (len(BODY), conn) + BODY)
            await writer.drain()
            if close_upstream:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def one_client(proxy_port, origin_port, held, errors, sem, request=True):
    async with sem:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy_port), 30)
            if not request:
                held.append((reader, writer))
                return
            writer.write(f"GET http://127.0.0.1:{origin_port}/1k HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n"
                         f"User-Agent: idle-keepalive-memory\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = head.split(b" ", 2)[1]
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
            if status != b"200" or not m:
                raise OSError(f"answered {head.splitlines()[0].decode(errors='replace')}")
            await asyncio.wait_for(reader.readexactly(int(m.group(1))), 30)
            if re.search(rb"\r\nconnection:\s*close", head, re.I):
                raise OSError("proxy closed the client connection after the response")
            held.append((reader, writer))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            errors.append(str(e) or type(e).__name__)
            if writer is not None:
                writer.close()


async def settle(pid, seconds, timeout):
    # Wait at least `seconds`, then until two readings 0.5 s apart agree within 64 KiB (bounded).
    await asyncio.sleep(seconds)
    deadline = time.monotonic() + timeout
    last = memory(pid)["rss_kib"]
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = memory(pid)["rss_kib"]
        if abs(now - last) <= 64:
            return True
        last = now
    return False


def result(key, value):
    print(f"result {key} {value}", flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--stats-port", type=int, required=True)
    ap.add_argument("--stages", required=True, help="comma-separated connection counts, cumulative")
    ap.add_argument("--warmup", type=int, default=64)
    ap.add_argument("--upstream", choices=["keep-alive", "close"], default="keep-alive")
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--no-request", action="store_true", help="connect only (the floor: no request sent)")
    args = ap.parse_args()
    stages = [int(s) for s in args.stages.split(",")]

    server = await asyncio.start_server(lambda r, w: origin_handler(r, w, args.upstream == "close"),
                                        "127.0.0.1", 0, backlog=4096)
    origin_port = server.sockets[0].getsockname()[1]
    sem = asyncio.Semaphore(args.parallel)

    # Warm-up: one-off costs (thread pool, pools, first audit segment, lazily built tables) are paid
    # before the baseline reading; these connections are closed again.
    warm, errors = [], []
    await asyncio.gather(*(one_client(args.proxy_port, origin_port, warm, errors, sem) for _ in range(args.warmup)))
    for _, w in warm:
        w.close()
    if errors:
        result("error", f"warm-up: {len(errors)} failed, first: {errors[0]}".replace(" ", "_"))
        return 1
    await asyncio.sleep(0.5)
    await settle(args.pid, args.settle, 20)
    base = memory(args.pid)
    for k, v in base.items():
        result(f"stage0_{k}", v)
    result("stage0_connections", 0)
    text = scrape(args.stats_port)
    result("stage0_active", metric(text, "chronoguard_connections_active"))

    held = []
    prev = base
    for i, n in enumerate(stages, start=1):
        errors = []
        t0 = time.monotonic()
        await asyncio.gather(*(one_client(args.proxy_port, origin_port, held, errors, sem, not args.no_request)
                               for _ in range(n)))
        opened_ms = int((time.monotonic() - t0) * 1000)
        if errors:
            result("error", f"stage {i}: {len(errors)} of {n} failed, first: {errors[0]}".replace(" ", "_"))
            return 1
        stable = await settle(args.pid, args.settle, 30)
        mem = memory(args.pid)
        text = scrape(args.stats_port)
        active = metric(text, "chronoguard_connections_active")
        for k, v in mem.items():
            result(f"stage{i}_{k}", v)
        result(f"stage{i}_connections", len(held))
        result(f"stage{i}_active", active)
        result(f"stage{i}_stable", int(stable))
        result(f"stage{i}_open_ms", opened_ms)
        result(f"stage{i}_per_conn_rss_bytes", round((mem["rss_kib"] - prev["rss_kib"]) * 1024 / n))
        result(f"stage{i}_per_conn_anon_bytes", round((mem["anon_kib"] - prev["anon_kib"]) * 1024 / n))
        for j, line in enumerate(gc_lines(text)):
            result(f"stage{i}_gc{j}", line.replace(" ", "="))
        print(f"stage {i}: {len(held)} idle connections, RSS {mem['rss_kib']} KiB, active {active}", file=sys.stderr)
        if active is not None and active < len(held):
            result("error", f"stage {i}: proxy reports {active:.0f} active connections, {len(held)} held")
            return 1
        prev = mem

    # Every held connection must still be open and usable: a proxy that quietly dropped them would
    # make the figure meaningless.
    alive = 0
    for r, _ in held:
        if not r.at_eof():
            alive += 1
    result("held_alive_at_end", alive)
    if alive < len(held):
        result("error", f"{len(held) - alive} of {len(held)} idle connections were closed by the proxy during the run")
        return 1
    for _, w in held:
        w.close()
    await asyncio.sleep(0.2)
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
