using System.Diagnostics;
using System.Net;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A resolver on loopback (UDP and TCP on one port; 127.0.0.1 unless told) that the test starts and owns: Debian's dnspython
/// under /usr/bin/python3 answering from a zone the test gives (<c>name|TYPE|ttl|rdata</c> lines,
/// CNAMEs followed; names it does not know are NXDOMAIN with an SOA), truncating over UDP what does
/// not fit the asker's EDNS size, and telling the test every question it was asked. The DNS guard's
/// tests point Dns:Upstream here, never at /etc/resolv.conf.
/// </summary>
internal sealed class FakeResolver : IAsyncDisposable
{
    private const string Script = """
        import os, socket, struct, sys, threading
        import dns.exception, dns.flags, dns.message, dns.name, dns.rcode, dns.rdata, dns.rdataclass, dns.rdatatype, dns.rrset

        zone = {}
        for line in sys.argv[1:]:
            name, rtype, ttl, rdata = line.split('|', 3)
            key = (dns.name.from_text(name), dns.rdatatype.from_text(rtype))
            zone.setdefault(key, []).append((int(ttl), dns.rdata.from_text(dns.rdataclass.IN, key[1], rdata)))
        names = {k[0] for k in zone}
        soa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, 'ns.test. hostmaster.test. 1 60 60 60 45')

        def answer(wire, proto):
            q = dns.message.from_wire(wire)
            question = q.question[0]
            print('Q', proto, question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype), flush=True)
            r = dns.message.make_response(q)
            name = question.name
            for _ in range(8):
                if (name, question.rdtype) in zone:
                    rs = r.find_rrset(r.answer, name, dns.rdataclass.IN, question.rdtype, create=True)
                    for ttl, rd in zone[(name, question.rdtype)]:
                        rs.add(rd, ttl)
                    break
                if (name, dns.rdatatype.CNAME) in zone:
                    ttl, rd = zone[(name, dns.rdatatype.CNAME)][0]
                    r.find_rrset(r.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME, create=True).add(rd, ttl)
                    name = rd.target
                    continue
                break
            if not r.answer:
                r.find_rrset(r.authority, dns.name.from_text('test'), dns.rdataclass.IN, dns.rdatatype.SOA, create=True).add(soa, 300)
                if question.name not in names:
                    r.set_rcode(dns.rcode.NXDOMAIN)
            limit = 65535 if proto == 'tcp' else (q.payload if q.edns >= 0 else 512)
            try:
                return r.to_wire(max_size=limit)
            except dns.exception.TooBig:
                r.answer = []
                r.authority = []
                r.flags |= dns.flags.TC
                return r.to_wire()

        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        address, port = os.environ.get('FAKE_DNS_ADDRESS', '127.0.0.1'), int(os.environ.get('FAKE_DNS_PORT', '0'))
        while True:
            udp.bind((address, port))
            try:
                tcp.bind((address, udp.getsockname()[1]))
                break
            except OSError:
                if port:
                    raise
                udp.close()
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp.listen(16)
        print('PORT', udp.getsockname()[1], flush=True)

        def serve_udp():
            while True:
                wire, peer = udp.recvfrom(65535)
                udp.sendto(answer(wire, 'udp'), peer)

        def read_exactly(c, n):
            b = b''
            while len(b) < n:
                part = c.recv(n - len(b))
                if not part:
                    raise EOFError()
                b += part
            return b

        def serve_tcp(c):
            with c:
                try:
                    while True:
                        n = struct.unpack('!H', read_exactly(c, 2))[0]
                        out = answer(read_exactly(c, n), 'tcp')
                        c.sendall(struct.pack('!H', len(out)) + out)
                except (EOFError, OSError):
                    pass

        def orphaned():
            sys.stdin.read()  # EOF: the test process is gone, however it ended
            os._exit(0)

        threading.Thread(target=orphaned, daemon=True).start()
        threading.Thread(target=serve_udp, daemon=True).start()
        while True:
            c, _ = tcp.accept()
            threading.Thread(target=serve_tcp, args=(c,), daemon=True).start()
        """;

    private readonly Process _process;
    private readonly List<string> _questions = [];
    private readonly TempDir _dir;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private FakeResolver(Process process, IPEndPoint endPoint, TempDir dir)
    {
        _process = process;
        _dir = dir;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>Every question asked so far: "udp allowed.test A".</summary>
    public IReadOnlyList<string> Questions
    {
        get
        {
            lock (_questions)
            {
                return [.. _questions];
            }
        }
    }

    /// <summary>Waits (up to 30 s) until <paramref name="question"/> ("udp allowed.test A") was asked.</summary>
    public async Task WaitForAsync(string question)
    {
        var deadline = Task.Delay(TimeSpan.FromSeconds(30));
        while (true)
        {
            Task changed;
            lock (_questions)
            {
                if (_questions.Contains(question))
                {
                    return;
                }

                changed = _changed.Task;
            }

            if (await Task.WhenAny(changed, deadline) == deadline)
            {
                Assert.Fail($"the fake resolver was never asked '{question}'; it was asked: {string.Join(", ", Questions)}");
            }
        }
    }

    public static Task<FakeResolver> StartAsync(params string[] zone) => StartAsync(new IPEndPoint(IPAddress.Loopback, 0), null, zone);

    /// <summary>A resolver on <paramref name="endPoint"/> (port 0: any free one), run under <paramref name="launcher"/> (e.g. nsenter into a test namespace) when given.</summary>
    public static async Task<FakeResolver> StartAsync(IPEndPoint endPoint, IReadOnlyList<string>? launcher, params string[] zone)
    {
        await ExternalTools.EnsureAsync("dnspython");
        var dir = new TempDir();
        var script = dir.File("fake_resolver.py");
        await File.WriteAllTextAsync(script, Script);
        var info = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : "/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (launcher is { Count: > 0 })
        {
            foreach (var a in launcher.Skip(1).Append("/usr/bin/python3"))
            {
                info.ArgumentList.Add(a);
            }
        }

        info.Environment["FAKE_DNS_ADDRESS"] = endPoint.Address.ToString();
        info.Environment["FAKE_DNS_PORT"] = endPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.ArgumentList.Add("-u");
        info.ArgumentList.Add(script);
        foreach (var line in zone)
        {
            info.ArgumentList.Add(line);
        }

        var process = Process.Start(info)!;
        TestChildren.Track(process);
        var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (first is null || !first.StartsWith("PORT ", StringComparison.Ordinal))
        {
            var error = await process.StandardError.ReadToEndAsync();
            process.Kill();
            throw new InvalidOperationException($"fake resolver did not start: {first} {error}");
        }

        var resolver = new FakeResolver(process, new IPEndPoint(endPoint.Address, int.Parse(first.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture)), dir);
        _ = resolver.CollectAsync();
        return resolver;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _dir.Dispose();
    }

    private async Task CollectAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("Q ", StringComparison.Ordinal))
            {
                TaskCompletionSource changed;
                lock (_questions)
                {
                    _questions.Add(line[2..]);
                    changed = _changed;
                    _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                changed.TrySetResult();
            }
        }
    }
}
