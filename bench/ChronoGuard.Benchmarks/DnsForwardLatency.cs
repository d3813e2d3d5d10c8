using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Issue 18: what the DNS guard adds to a forwarded question, without Python's own costs in the way: a
/// resolver on 127.0.0.1:<c>upstreamPort</c> (a thread with blocking sockets that answers every A
/// question with 192.0.2.1) and one client that asks it N distinct names directly and N others through
/// the guard at <c>guard</c> (whose Dns:Upstream is that resolver), alternating, one at a time.
/// `dotnet run -c Release -- dns-forward-latency N guard-HOST:PORT upstream-port` (perf/dns-forward.py --client csharp)
/// </summary>
internal static class DnsForwardLatency
{
    public static void Run(TextWriter output, int count, IPEndPoint guard, int upstreamPort)
    {
        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        upstream.Bind(new IPEndPoint(IPAddress.Loopback, upstreamPort));
        new Thread(() => Serve(upstream)) { IsBackground = true, Name = "fake-upstream" }.Start();
        var direct = new IPEndPoint(IPAddress.Loopback, upstreamPort);

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
        var answer = new byte[4096];
        for (var i = 0; i < 500; i++)
        {
            Ask(client, direct, $"w{i}.bench.test", answer);
            Ask(client, guard, $"w{i}.bench.test", answer);
        }

        var directUs = new double[count];
        var guardedUs = new double[count];
        for (var i = 0; i < count; i++)
        {
            directUs[i] = Ask(client, direct, $"d{i}.bench.test", answer);
            guardedUs[i] = Ask(client, guard, $"g{i}.bench.test", answer);
        }

        var pairs = new double[count];
        for (var i = 0; i < count; i++)
        {
            pairs[i] = guardedUs[i] - directUs[i];
        }

        output.WriteLine($"forwarded question, {count} sequential each (alternating), one C# client, latency in us:");
        output.WriteLine($"  {"",-22} {"p50",8} {"p90",8} {"p99",8}");
        Line(output, "upstream directly", directUs, null);
        Line(output, "through the guard", guardedUs, null);
        Line(output, "added by the guard", guardedUs, directUs);
        Line(output, "paired difference", pairs, null);
    }

    private static void Line(TextWriter output, string label, double[] values, double[]? minus)
    {
        double P(double[] v, double q)
        {
            var sorted = v.Order().ToArray();
            return sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        }

        double At(double q) => P(values, q) - (minus is null ? 0 : P(minus, q));
        output.WriteLine($"  {label,-22} {At(0.5),8:F0} {At(0.9),8:F0} {At(0.99),8:F0}");
    }

    private static double Ask(Socket client, IPEndPoint server, string name, byte[] answer)
    {
        var query = new List<byte> { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.'))
        {
            query.Add((byte)label.Length);
            query.AddRange(Encoding.ASCII.GetBytes(label));
        }

        query.AddRange([0, 0, 1, 0, 1]);
        var bytes = query.ToArray();
        var start = Stopwatch.GetTimestamp();
        client.SendTo(bytes, server);
        client.Receive(answer);
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds;
    }

    /// <summary>Answers each question with its own header and question and one A record (192.0.2.1, TTL 300).</summary>
    private static void Serve(Socket socket)
    {
        var buffer = new byte[4096];
        EndPoint peer = new IPEndPoint(IPAddress.Any, 0);
        byte[] record = [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1];
        while (true)
        {
            int got;
            try
            {
                got = socket.ReceiveFrom(buffer, ref peer);
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            var end = 12;
            while (end < got && buffer[end] != 0)
            {
                end += buffer[end] + 1;
            }

            end += 5;
            buffer[2] |= 0x80;
            buffer[3] = 0x80;
            buffer[6] = 0;
            buffer[7] = 1;
            buffer[10] = 0;
            buffer[11] = 0;
            record.CopyTo(buffer, end);
            socket.SendTo(buffer.AsSpan(0, end + record.Length), SocketFlags.None, peer);
        }
    }
}
