using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Issue 18: cached answers per second through the DNS guard's real UDP socket (one receive loop, so
/// one core), from clients on loopback keeping a window of questions in flight each.
/// `dotnet run -c Release -- dns-throughput [seconds] [clients] [guard HOST:PORT]`: with an address, only
/// the clients, against a guard already running there (the sidecar, pinned to a core of its own by
/// perf/dns-forward.py --throughput), which must answer <c>api.example.com</c> A.
/// </summary>
internal static class DnsThroughput
{
    private const int Window = 32;

    public static async Task RunAsync(TextWriter output, int seconds, int clients, IPEndPoint? target = null)
    {
        if (target is not null)
        {
            var query = Message(0x1111, response: false);
            var stop = Stopwatch.StartNew();
            var counts = await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(() => Client(target, query, seconds))));
            output.WriteLine($"answers: {counts.Sum()} in {stop.Elapsed.TotalSeconds:F3} s: {counts.Sum() / stop.Elapsed.TotalSeconds:F0}/s, {clients} clients with {Window} questions in flight each (client process CPU {Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F1} s)");
            return;
        }

        var path = Path.Combine(Path.GetTempPath(), $"cg-bench-dns-{Environment.ProcessId}.json");
        File.WriteAllText(path, """
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "0000000000000000000000000000000000000000000000000000000000000000", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example.com"] } ] }
            """);
        try
        {
            var engine = new PolicyEngine(path, 512, TimeProvider.System);
            engine.Reload();
            await using var guard = new DnsGuard(new DnsOptions(), "bot", new IPEndPoint(IPAddress.Loopback, 53), new PolicyGate(engine, TimeProvider.System), new AnswerMemory());
            if (guard.Rebuild(Message(0x3333, response: true), 0x3333, "api.example.com"u8.ToArray(), DnsWire.TypeA, new byte[4096]) < 0)
            {
                throw new InvalidOperationException("the upstream answer did not rebuild");
            }

            guard.Start(new IPEndPoint(IPAddress.Loopback, 0));
            var query = Message(0x1111, response: false);
            var stop = Stopwatch.StartNew();
            var counts = await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(() => Client(guard.LocalEndpoint, query, seconds))));
            var elapsed = stop.Elapsed.TotalSeconds;
            var cpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
            var guardCpu = GuardThreadSeconds();
            output.WriteLine($"cached answers: {counts.Sum() / elapsed:N0}/s over {elapsed:F1} s, {clients} clients with {Window} questions in flight each (clients and guard in one process on this machine; process CPU {cpu:F1} s)");
            output.WriteLine($"the guard's UDP thread used {guardCpu:F2} s of CPU: {counts.Sum() / guardCpu:N0} answers per CPU-second (one core)");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>CPU time (user + system) of the guard's UDP thread, from /proc (the kernel keeps its name's first 15 characters).</summary>
    private static double GuardThreadSeconds()
    {
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "chronoguard-dns")
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // Fields 14 and 15 of stat(5) (utime, stime), counted after the command name's ')'.
                return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
            }
        }

        return double.NaN;
    }

    private static long Client(IPEndPoint guard, byte[] query, int seconds)
    {
        // A datagram lost under load costs one short wait, not a second of the run.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 50 };
        socket.Connect(guard);
        var buffer = new byte[512];
        var answered = 0L;
        var end = Stopwatch.GetTimestamp() + (seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end)
        {
            for (var i = 0; i < Window; i++)
            {
                socket.Send(query);
            }

            try
            {
                for (var i = 0; i < Window; i++)
                {
                    socket.Receive(buffer);
                    answered++;
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
                // A datagram dropped under load: send the next window.
            }
        }

        return answered;
    }

    private static byte[] Message(ushort id, bool response)
    {
        var buffer = new byte[512];
        var w = new DnsWriter(buffer);
        w.WriteUInt16(id);
        w.WriteUInt16(response ? (ushort)0x8180 : (ushort)0x0100);
        w.WriteUInt16(1);
        w.WriteUInt16(response ? (ushort)1 : (ushort)0);
        w.WriteUInt16(0);
        w.WriteUInt16(0);
        w.WriteName("api.example.com"u8);
        w.WriteUInt16(DnsWire.TypeA);
        w.WriteUInt16(DnsWire.ClassIn);
        if (response)
        {
            w.WriteUInt16(0xC00C);
            w.WriteUInt16(DnsWire.TypeA);
            w.WriteUInt16(DnsWire.ClassIn);
            w.WriteUInt32(300);
            w.WriteUInt16(4);
            w.WriteBytes([192, 0, 2, 10]);
        }

        return buffer[..w.Position];
    }
}
