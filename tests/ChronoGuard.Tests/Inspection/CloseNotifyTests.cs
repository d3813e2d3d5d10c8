using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// An inspected connection ends in TLS as an origin's would (SPEC §7): a <c>close_notify</c> before
/// the FIN, so a client that refuses ragged EOFs (Python's ssl with suppress_ragged_eofs=False, as
/// many HTTP stacks do for bodies framed by the close) reads a clean end, after a forwarded response
/// and after a refusal alike.
/// </summary>
public sealed class CloseNotifyTests
{
    private const string Client = """
        import socket, ssl, sys
        proxy, host, port, cafile, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        s = socket.create_connection(("127.0.0.1", proxy), timeout=20)
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        t = ssl.create_default_context(cafile=cafile).wrap_socket(s, server_hostname=host, suppress_ragged_eofs=False)
        t.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while True:
                d = t.recv(65536)
                if not d:
                    break
                data += d
            print("clean", data.split(b"\r\n")[0].decode())
        except ssl.SSLEOFError:
            print("ragged", data.split(b"\r\n")[0].decode())
        """;

    [Theory]
    [InlineData("/echo/a", "clean HTTP/1.1 200 OK")]
    [InlineData("/denied/a", "clean HTTP/1.1 403 Forbidden (chronoguard: BLOCK rule_deny)")]
    public async Task The_client_reads_a_close_notify_before_the_connection_ends(string path, string expected)
    {
        await ExternalTools.EnsureAsync("python3");
        await using var rig = await InspectionRig.StartAsync();
        var gate = new InspectingGate(new RecordingGate(), InspectionRig.Host) { DenyPathPrefix = "/denied" };
        await using var proxy = TestProxy.Start(gate: gate, resolver: rig.Resolver, inspection: rig.Inspection);
        var script = rig.Dir.File("client.py");
        await File.WriteAllTextAsync(script, Client);

        var (code, output) = await ExternalTools.RunAsync("python3", [script, proxy.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), InspectionRig.Host, rig.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), rig.CaFile, path], TimeSpan.FromSeconds(60));

        Assert.True(code == 0, output);
        Assert.Equal(expected, output.Trim());
    }
}
