#!/usr/bin/python3
"""The DNS guard's two performance figures (issue 18), measured against the real sidecar:

1. What the guard adds to a forwarded question (target: at most 0.2 ms). A dnspython resolver on
   127.0.0.1 in a process of its own (answers every name with one A record), the sidecar from its Release
   build with Dns:Listen and Dns:Upstream pointed at it; one client asks N distinct names of the
   resolver directly and N others through the guard (each a forward: never cached), alternating, and
   prints p50/p90/p99 of each, their differences, and the percentiles of the paired differences.
2. With --throughput SECONDS: cached answers per second end to end, the sidecar pinned to one CPU
   (--guard-cpu, default 0) and the C# client of `ChronoGuard.Benchmarks dns-throughput` pinned to
   another (--client-cpu, default 1), with --clients sockets keeping 32 questions in flight each (target:
   100,000/s on one core); the sidecar's CPU time over the run is read from /proc.

Needs Debian's python3-dnspython (/usr/bin/python3), `dotnet build -c Release src/ChronoGuard.Sidecar`
and, for --throughput, `dotnet build -c Release bench/ChronoGuard.Benchmarks`.
Usage: perf/dns-forward.py [N] [--guard-cpu C] [--throughput SECONDS] [--clients K] [--client-cpu C] [--rt] [--client python|csharp] [--sidecar DLL]
"""
import argparse, multiprocessing, os, shutil, socket, subprocess, sys, tempfile, threading, time
import dns.message, dns.rrset

parser = argparse.ArgumentParser()
parser.add_argument('n', nargs='?', type=int, default=5000)
parser.add_argument('--guard-cpu', type=int)
parser.add_argument('--throughput', type=int, default=0)
parser.add_argument('--clients', type=int, default=2)
parser.add_argument('--client-cpu', type=int, default=1)
parser.add_argument('--rt', action='store_true', help='run the sidecar and the throughput client under chrt -f 10 (root): on a machine others load, the nearest to a core of its own')
parser.add_argument('--client', choices=['python', 'csharp'], default='python', help='csharp: the client and the resolver of `ChronoGuard.Benchmarks dns-forward-latency` (blocking sockets, no interpreter in the way) instead of dnspython; not with --throughput')
parser.add_argument('--sidecar', help='chronoguard.dll to measure (default: this tree\'s Release build), e.g. an older build for a before/after')
args = parser.parse_args()
if args.client == 'csharp' and args.throughput:
    parser.error('--client csharp measures the latency only')
N = args.n
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dll = args.sidecar or os.path.join(repo, 'src/ChronoGuard.Sidecar/bin/Release/net10.0/chronoguard.dll')
bench = os.path.join(repo, 'bench/ChronoGuard.Benchmarks/bin/Release/net10.0/ChronoGuard.Benchmarks.dll')

def serve(sock):
    while True:
        wire, peer = sock.recvfrom(4096)
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, 'IN', 'A', '192.0.2.1'))
        sock.sendto(r.to_wire(), peer)

# The resolver in a process of its own: as a thread of the client's it would share the client's GIL,
# and the two paths would not wait on it alike.
upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
upstream.bind(('127.0.0.1', 0))
upstream_address = upstream.getsockname()
if args.client == 'csharp':
    upstream.close()  # the port is the C# resolver's to bind
    resolver = None
else:
    resolver = multiprocessing.Process(target=serve, args=(upstream,), daemon=True)
    resolver.start()

work = tempfile.mkdtemp(prefix='cg-dns-perf-')
policy = os.path.join(work, 'policy.json')
with open(policy, 'w') as f:
    f.write('{ "version": 1, "agents": [ { "id": "bot", "tokenSha256": "%s", "policies": ["p"] } ],'
            ' "policies": [ { "name": "p", "allowedDomains": ["*.bench.test", "api.example.com"] } ] }' % ('0' * 64))
env = dict(os.environ, CHRONOGUARD__Dns__Listen='127.0.0.1:0', CHRONOGUARD__Dns__Upstream='127.0.0.1:%d' % upstream_address[1],
           CHRONOGUARD__Dns__Agent='bot', CHRONOGUARD__Policy__Watch='false')
rt = ['chrt', '-f', '10'] if args.rt else []
pin = rt + (['taskset', '-c', str(args.guard_cpu)] if args.guard_cpu is not None else [])
sidecar = subprocess.Popen(pin + ['dotnet', dll, 'run', '--listen', '127.0.0.1:0', '--stats', '127.0.0.1:0', '--audit-dir', os.path.join(work, 'audit'), '--policy', policy],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
guard = None
for line in sidecar.stdout:
    if 'DNS guard listening on ' in line:
        guard = line.split('DNS guard listening on ')[1].split(' ')[0]
        break
host, port = guard.rsplit(':', 1)
guard = (host, int(port))
threading.Thread(target=lambda: [None for _ in sidecar.stdout], daemon=True).start()

client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(5)
def ask(server, name):
    wire = dns.message.make_query(name, 'A').to_wire()
    start = time.perf_counter_ns()
    client.sendto(wire, server)
    client.recvfrom(4096)
    return (time.perf_counter_ns() - start) / 1000.0

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]

def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

try:
    if args.client == 'csharp':
        print(subprocess.run(['dotnet', bench, 'dns-forward-latency', str(N), '%s:%d' % guard, str(upstream_address[1])],
                             capture_output=True, text=True, check=True).stdout.strip())
        sys.exit(0)
    for i in range(500):  # warm-up: JIT, sockets
        ask(upstream_address, 'w%d.bench.test' % i)
        ask(guard, 'w%d.bench.test' % i)
    direct, guarded = [], []
    for i in range(N):
        direct.append(ask(upstream_address, 'd%d.bench.test' % i))
        guarded.append(ask(guard, 'g%d.bench.test' % i))
    print('forwarded question, %d sequential each (alternating), one client, latency in us%s%s:'
          % (N, '' if args.guard_cpu is None else ', sidecar on CPU %d' % args.guard_cpu, ', sidecar under chrt -f 10' if args.rt else ''))
    print('  %-22s %8s %8s %8s' % ('', 'p50', 'p90', 'p99'))
    print('  %-22s %8.0f %8.0f %8.0f' % ('upstream directly', pct(direct, .5), pct(direct, .9), pct(direct, .99)))
    print('  %-22s %8.0f %8.0f %8.0f' % ('through the guard', pct(guarded, .5), pct(guarded, .9), pct(guarded, .99)))
    print('  %-22s %8.0f %8.0f %8.0f' % ('added by the guard', pct(guarded, .5) - pct(direct, .5), pct(guarded, .9) - pct(direct, .9), pct(guarded, .99) - pct(direct, .99)))
    pairs = [g - d for d, g in zip(direct, guarded)]
    print('  %-22s %8.0f %8.0f %8.0f' % ('paired difference', pct(pairs, .5), pct(pairs, .9), pct(pairs, .99)))
    cached = [ask(guard, 'cached.bench.test') for _ in range(N)]
    print('cached answer through the guard: median %.0f us (one Python client, its own cost included)' % pct(cached, .5))

    if args.throughput:
        ask(guard, 'api.example.com')  # now cached
        before = cpu_seconds(sidecar.pid)
        out = subprocess.run(rt + ['taskset', '-c', str(args.client_cpu), 'dotnet', bench, 'dns-throughput', str(args.throughput), str(args.clients), '%s:%d' % guard],
                             capture_output=True, text=True, check=True).stdout.strip()
        used = cpu_seconds(sidecar.pid) - before
        answered = int(out.split('answers: ')[1].split(' ')[0])
        print('cached answers end to end: %s' % out)
        print('  the sidecar (pinned to CPU %s) used %.2f CPU-s: %.0f answers per CPU-second'
              % (args.guard_cpu, used, answered / used if used else float('nan')))
finally:
    sidecar.terminate()
    sidecar.wait()
    if resolver is not None:
        resolver.terminate()
    shutil.rmtree(work, ignore_errors=True)
