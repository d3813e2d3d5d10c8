#!/usr/bin/python3
"""What the DNS guard adds to a forwarded question (issue 18: at most 0.2 ms), and how fast it answers
from its cache, measured with one client on loopback.

Starts a dnspython resolver on 127.0.0.1 (answers every name with one A record), the sidecar from
its Release build with Dns:Listen and Dns:Upstream pointed at that resolver, then asks N distinct
names of the resolver directly and N others through the guard (each a forward: never cached), in
alternating order, and prints p50/p90/p99 of each and their difference; then N times one cached name.
Needs Debian's python3-dnspython (/usr/bin/python3). Usage: perf/dns-forward.py [N]
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
import dns.message, dns.rrset

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dll = os.path.join(repo, 'src/ChronoGuard.Sidecar/bin/Release/net10.0/chronoguard.dll')

upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
upstream.bind(('127.0.0.1', 0))
def serve():
    while True:
        wire, peer = upstream.recvfrom(4096)
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, 'IN', 'A', '192.0.2.1'))
        upstream.sendto(r.to_wire(), peer)
threading.Thread(target=serve, daemon=True).start()

work = tempfile.mkdtemp(prefix='cg-dns-perf-')
policy = os.path.join(work, 'policy.json')
with open(policy, 'w') as f:
    f.write('{ "version": 1, "agents": [ { "id": "bot", "tokenSha256": "%s", "policies": ["p"] } ],'
            ' "policies": [ { "name": "p", "allowedDomains": ["*.bench.test"] } ] }' % ('0' * 64))
env = dict(os.environ, CHRONOGUARD__Dns__Listen='127.0.0.1:0', CHRONOGUARD__Dns__Upstream='127.0.0.1:%d' % upstream.getsockname()[1],
           CHRONOGUARD__Dns__Agent='bot', CHRONOGUARD__Policy__Watch='false')
sidecar = subprocess.Popen(['dotnet', dll, 'run', '--listen', '127.0.0.1:0', '--stats', '127.0.0.1:0', '--audit-dir', os.path.join(work, 'audit'), '--policy', policy],
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

try:
    for i in range(500):  # warm-up: JIT, sockets
        ask(upstream.getsockname(), 'w%d.bench.test' % i)
        ask(guard, 'w%d.bench.test' % i)
    direct, guarded = [], []
    for i in range(N):
        direct.append(ask(upstream.getsockname(), 'd%d.bench.test' % i))
        guarded.append(ask(guard, 'g%d.bench.test' % i))
    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]
    print('forwarded question, %d sequential each (alternating), one client, latency in us:' % N)
    print('  %-22s %8s %8s %8s' % ('', 'p50', 'p90', 'p99'))
    print('  %-22s %8.0f %8.0f %8.0f' % ('upstream directly', pct(direct, .5), pct(direct, .9), pct(direct, .99)))
    print('  %-22s %8.0f %8.0f %8.0f' % ('through the guard', pct(guarded, .5), pct(guarded, .9), pct(guarded, .99)))
    print('  %-22s %8.0f %8.0f %8.0f' % ('added by the guard', pct(guarded, .5) - pct(direct, .5), pct(guarded, .9) - pct(direct, .9), pct(guarded, .99) - pct(direct, .99)))
    pairs = [g - d for d, g in zip(direct, guarded)]
    print('  %-22s %8.0f %8.0f %8.0f' % ('paired difference', pct(pairs, .5), pct(pairs, .9), pct(pairs, .99)))
    cached = [ask(guard, 'cached.bench.test') for _ in range(N)]
    print('cached answer through the guard: median %.0f us (one Python client, its own cost included)' % statistics.median(cached))
finally:
    sidecar.terminate()
    sidecar.wait()
    shutil.rmtree(work, ignore_errors=True)
