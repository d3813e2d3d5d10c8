using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Http;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

public sealed class TlsClientHelloTests
{
    private const string Host = "api.example.org";

    [Theory]
    [InlineData(Host)]
    [InlineData("")]
    public async Task A_real_SslStream_ClientHello_is_read_whole_from_every_prefix_and_segmentation(string sni)
    {
        var hello = await CaptureClientHelloAsync(sni);
        Assert.Equal(1, CountRecords(hello));
        var expected = sni.Length == 0 ? TlsClientHello.Result.NoSni : TlsClientHello.Result.Found;
        for (var cut = 0; cut < hello.Length; cut++)
        {
            Assert.Equal(TlsClientHello.Result.NeedMore, Judge(new ReadOnlySequence<byte>(hello, 0, cut), out _));
            Assert.Equal((expected, sni), (Judge(Segments.Split(hello, cut), out var host), host));
        }
    }

    [Theory]
    [InlineData(Host)]
    [InlineData("")]
    public async Task A_real_ClientHello_split_over_two_records_at_every_offset_is_judged_as_whole(string sni)
    {
        // The fronting shape: the first record alone was classed "not TLS" and relayed past the check.
        var message = (await CaptureClientHelloAsync(sni))[5..];
        var expected = sni.Length == 0 ? TlsClientHello.Result.NoSni : TlsClientHello.Result.Found;
        var random = new Random(11);
        for (var k = 1; k < message.Length; k++)
        {
            var wire = Records(message, [k]);
            Assert.Equal((expected, sni), (Judge(new ReadOnlySequence<byte>(wire), out var host), host));
            Assert.Equal((expected, sni), (Judge(Segments.Split(wire, random.Next(wire.Length + 1)), out host), host));
            Assert.Equal(TlsClientHello.Result.NeedMore, Judge(new ReadOnlySequence<byte>(wire, 0, random.Next(wire.Length)), out _));
        }
    }

    [Fact]
    public async Task A_real_ClientHello_over_three_to_sixty_four_records_is_judged_as_whole()
    {
        var message = (await CaptureClientHelloAsync(Host))[5..];
        var random = new Random(12);
        for (var k = 1; k < message.Length - 1; k++)
        {
            var wire = Records(message, [k, k + 1 + random.Next(message.Length - k - 1)]);
            Assert.Equal((TlsClientHello.Result.Found, Host), (Judge(new ReadOnlySequence<byte>(wire), out var host), host));
        }

        for (var i = 0; i < 500; i++)
        {
            var cuts = Enumerable.Range(0, random.Next(3, TlsClientHello.MaxRecords)).Select(_ => random.Next(1, message.Length)).Distinct().Order().ToArray();
            var wire = Records(message, cuts);
            Assert.Equal((TlsClientHello.Result.Found, Host), (Judge(Segments.Split(wire, random.Next(wire.Length + 1), wire.Length), out var host), host));
            for (var p = 0; p < wire.Length; p += 1 + random.Next(64))
            {
                Assert.Equal(TlsClientHello.Result.NeedMore, Judge(Segments.Split(wire[..p], p / 2), out _));
            }
        }
    }

    [Fact]
    public void Records_are_bounded_in_number()
    {
        var message = Hello(Sni(Host));
        var cuts = Enumerable.Range(1, TlsClientHello.MaxRecords - 1).ToArray();
        Assert.Equal(TlsClientHello.Result.Found, Judge(new ReadOnlySequence<byte>(Records(message, cuts)), out _));
        cuts = Enumerable.Range(1, TlsClientHello.MaxRecords).ToArray();
        Assert.Equal(TlsClientHello.Result.Malformed, Judge(new ReadOnlySequence<byte>(Records(message, cuts)), out _));
    }

    [Fact]
    public void The_message_is_bounded_and_refused_as_soon_as_its_length_is_read()
    {
        var big = Hello(Sni(Host), Extension(0x15, new byte[TlsClientHello.MaxHelloBytes - 120]));
        Assert.InRange(big.Length, TlsClientHello.MaxHelloBytes - 100, TlsClientHello.MaxHelloBytes);
        Assert.Equal(TlsClientHello.Result.Found, Judge(new ReadOnlySequence<byte>(Records(big, [big.Length / 2])), out _));

        var over = Hello(Sni(Host), Extension(0x15, new byte[TlsClientHello.MaxHelloBytes]));
        var wire = Records(over, [over.Length / 2]);
        Assert.Equal(TlsClientHello.Result.Malformed, Judge(new ReadOnlySequence<byte>(wire, 0, 9), out _));
        Assert.Equal(TlsClientHello.Result.Malformed, Judge(new ReadOnlySequence<byte>(wire), out _));
    }

    [Fact]
    public async Task A_ClientHello_carrying_encrypted_client_hello_is_told_apart_from_a_plain_one()
    {
        // The outer SNI names an allowed host; the name the server acts on is in the encrypted payload.
        var ech = Extension(0xfe0d, [0, 0, 1, 0, 1, 7, 0, 4, 1, 2, 3, 4, 0, 2, 9, 9]);
        Assert.Equal(TlsClientHello.Result.EncryptedClientHello, Judge(new ReadOnlySequence<byte>(Record(Hello(Sni(Host), ech))), out var host));
        Assert.Equal(string.Empty, host);
        Assert.Equal(TlsClientHello.Result.EncryptedClientHello, Judge(new ReadOnlySequence<byte>(Record(Hello(ech, Sni(Host)))), out _));
        Assert.Equal(TlsClientHello.Result.EncryptedClientHello, Judge(new ReadOnlySequence<byte>(Record(Hello(ech))), out _));
        Assert.Equal(TlsClientHello.Result.Malformed, Judge(new ReadOnlySequence<byte>(Record(Hello(ech, Sni(Host), Sni(Host)))), out _));
        Assert.Equal(TlsClientHello.Result.Found, Judge(new ReadOnlySequence<byte>(Record(Hello(Extension(0xfe0c, [1]), Sni(Host)))), out _));

        var real = ClientHellos.WithExtension(await CaptureClientHelloAsync(Host), 0xfe0d, [0, 0, 1, 0, 1, 7, 0, 0, 0, 0]);
        Assert.Equal(TlsClientHello.Result.EncryptedClientHello, Judge(new ReadOnlySequence<byte>(real), out _));
        Assert.Equal(TlsClientHello.Result.EncryptedClientHello, Judge(new ReadOnlySequence<byte>(Records(real[5..], [real.Length / 2])), out _));
        Assert.Equal(TlsClientHello.Result.NeedMore, Judge(new ReadOnlySequence<byte>(real, 0, real.Length - 1), out _));
    }

    public static TheoryData<string, byte[]> MalformedWires()
    {
        var m = Hello(Sni(Host));
        var half = m.Length / 2;
        byte[] WithRecordType(byte type) => [.. Record(m[..half]), .. Record([1, 2], type: type), .. Record(m[half..])];
        return new TheoryData<string, byte[]>
        {
            { "a warning alert before the hello (BoringSSL skips it)", [.. Record([1, 90], type: 21), .. Record(m)] },
            { "four warning alerts before the hello", [.. Record([1, 90], type: 21), .. Record([1, 100], type: 21), .. Record([1, 90], type: 21), .. Record([1, 90], type: 21), .. Record(m)] },
            { "a fatal alert before the hello", [.. Record([2, 40], type: 21, minor: 3), .. Record(m)] },
            { "a change_cipher_spec before the hello", [.. Record([1], type: 20), .. Record(m)] },
            { "a lone warning alert", Record([1, 90], type: 21, minor: 0) },
            { "an alert between the fragments", WithRecordType(21) },
            { "a change_cipher_spec between the fragments", WithRecordType(20) },
            { "application data between the fragments", WithRecordType(23) },
            { "a second record of another version", [.. Record(m[..half]), .. Record(m[half..], minor: 3)] },
            { "a record version past TLS 1.3", Record(m, minor: 5) },
            { "a later record of major version 4", [.. Record(m[..half]), .. Record(m[half..], major: 4)] },
            { "a zero-length first record", [.. Record([]), .. Record(m)] },
            { "a zero-length record between fragments", [.. Record(m[..half]), .. Record([]), .. Record(m[half..])] },
            { "a fragment over 2^14", [0x16, 3, 1, 0x40, 0x01, .. m] },
            { "a ServerHello", Record([2, .. m[1..]]) },
            { "a Finished", Record([20, 0, 0, 1, 0]) },
            { "bytes after the hello in its record", Record([.. m, 1, 0, 0, 0]) },
            { "bytes after the hello in a later record", Records([.. m, 1, 0, 0, 0], [half]) },
            { "fields short of the handshake length", Record([1, 0, (byte)((m.Length - 3) >> 8), (byte)(m.Length - 3), .. m[4..], 0]) },
            { "a handshake length short of the fields", Record([1, 0, 0, 10, 3, 3, .. new byte[8]]) },
            { "a legacy_version of major 2", Record(Patch(m, 4, 2)) },
            { "a session id of 33 bytes", Record(HelloWith(Sni(Host), sessionId: 33)) },
            { "an odd cipher suite length", Record(HelloWith(Sni(Host), suites: [0x13, 0x01, 0x13])) },
            { "no cipher suites", Record(HelloWith(Sni(Host), suites: [])) },
            { "no compression methods", Record(HelloWith(Sni(Host), compression: [])) },
            { "an extensions length past the message", Record(HelloWith(Sni(Host), extensionsLengthDelta: 1)) },
            { "an extensions length short of the message", Record(HelloWith(Sni(Host), extensionsLengthDelta: -1)) },
            { "an extension running past the list", Record(Hello(new byte[] { 0, 0x15, 0, 9, 1 })) },
            { "a truncated extension header", Record(Hello(Sni(Host), new byte[] { 0, 0x15 })) },
            { "two server_name extensions", Record(Hello(Sni(Host), Sni("other.test"))) },
            { "two host_name entries", Record(Hello(Sni(Host, "other.test"))) },
            { "the same host_name twice", Record(Hello(Sni(Host, Host))) },
            { "an entry that is not a host_name", Record(Hello(SniEntries(Entry(1, Host)))) },
            { "an empty server name list", Record(Hello(SniEntries())) },
            { "an empty server_name extension", Record(Hello(Extension(0, []))) },
            { "an empty host name", Record(Hello(Sni(""))) },
            { "a list length that disagrees", Record(Hello(Extension(0, [0, 40, 0, 0, 3, (byte)'a', (byte)'.', (byte)'b']))) },
            { "a name length that disagrees", Record(Hello(Extension(0, [0, 6, 0, 0, 4, (byte)'a', (byte)'.', (byte)'b']))) },
            { "a name over 255 bytes", Record(Hello(Sni(new string('a', 256)))) },
        };
    }

    [Theory]
    [MemberData(nameof(MalformedWires))]
    public void Malformed_hellos_are_refused_whole_and_when_split(string shape, byte[] wire)
    {
        Assert.True(TlsClientHello.Result.Malformed == Judge(new ReadOnlySequence<byte>(wire), out _), shape);
        for (var cut = 0; cut <= wire.Length; cut += 1 + (wire.Length / 64))
        {
            Assert.True(TlsClientHello.Result.Malformed == Judge(Segments.Split(wire, cut), out _), $"{shape}, cut at {cut}");
            // A prefix may not be decidable yet, but never passes for something else.
            var early = Judge(new ReadOnlySequence<byte>(wire, 0, cut), out _);
            Assert.True(early is TlsClientHello.Result.NeedMore or TlsClientHello.Result.Malformed, $"{shape}, prefix {cut}: {early}");
        }
    }

    [Theory]
    [InlineData("a b.test")]
    [InlineData("a\u0000.test")]
    [InlineData("caf\u00e9.test")]
    [InlineData("a.test.")]
    [InlineData(".a.test")]
    [InlineData("a..test")]
    [InlineData(".")]
    [InlineData("a/b.test")]
    [InlineData("a.test:443")]
    [InlineData("a@b.test")]
    [InlineData("a.test\r\n")]
    public void A_server_name_with_bytes_no_host_name_has_is_malformed(string name)
    {
        Assert.Equal(TlsClientHello.Result.Malformed, Judge(new ReadOnlySequence<byte>(Record(Hello(Sni(name)))), out _));
    }

    [Theory]
    [InlineData("A-b_c.Test")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("a")]
    [InlineData("10.0.0.1")]
    public void Valid_server_names_are_found(string name)
    {
        Assert.Equal((TlsClientHello.Result.Found, name), (Judge(new ReadOnlySequence<byte>(Record(Hello(Sni(name)))), out var host), host));
        var long255 = string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..255];
        Assert.Equal((TlsClientHello.Result.Found, long255), (Judge(new ReadOnlySequence<byte>(Record(Hello(Sni(long255)))), out host), host));
    }

    [Fact]
    public void Hellos_without_a_server_name_are_NoSni()
    {
        Assert.Equal(TlsClientHello.Result.NoSni, Judge(new ReadOnlySequence<byte>(Record(Hello(null))), out _));
        Assert.Equal(TlsClientHello.Result.NoSni, Judge(new ReadOnlySequence<byte>(Record(Hello(Extension(0x0a, [0, 2, 0, 0x1d])))), out _));
        var noExtensions = Hello(null);
        noExtensions = [1, 0, 0, (byte)(noExtensions.Length - 4 - 2), .. noExtensions[4..^2]];
        Assert.Equal(TlsClientHello.Result.NoSni, Judge(new ReadOnlySequence<byte>(Record(noExtensions)), out _));
    }

    [Theory]
    [InlineData(new byte[] { (byte)'G', (byte)'E', (byte)'T', (byte)' ' }, "NotTls")]
    [InlineData(new byte[] { 0x80, 0x2e, 0x01 }, "NotTls")]
    [InlineData(new byte[] { 0x16, 0x02 }, "NotTls")]
    [InlineData(new byte[] { 0x16, 0x04, 0x01, 0x00, 0x05 }, "NotTls")]
    [InlineData(new byte[] { 0x17, 0x03, 0x03, 0x00, 0x05 }, "NotTls")]
    [InlineData(new byte[] { 0x15, 0x03, 0x01, 0x00, 0x03 }, "NotTls")]
    [InlineData(new byte[] { 0x15, 0x03, 0x05 }, "NotTls")]
    [InlineData(new byte[] { 0x15, 0x02 }, "NotTls")]
    [InlineData(new byte[] { 0x15, 0x03, 0x01, 0x01 }, "NotTls")]
    [InlineData(new byte[] { 0x14, 0x03, 0x03, 0x00, 0x02 }, "NotTls")]
    [InlineData(new byte[] { 0x15 }, "NeedMore")]
    [InlineData(new byte[] { 0x15, 0x03, 0x01, 0x00 }, "NeedMore")]
    [InlineData(new byte[] { 0x14, 0x03, 0x03, 0x00, 0x01 }, "Malformed")]
    [InlineData(new byte[] { }, "NeedMore")]
    [InlineData(new byte[] { 0x16 }, "NeedMore")]
    [InlineData(new byte[] { 0x16, 0x03 }, "NeedMore")]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02 }, "NeedMore")]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00 }, "NeedMore")]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }, "NeedMore")]
    [InlineData(new byte[] { 0x16, 0x03, 0x09 }, "Malformed")]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x00 }, "Malformed")]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x02 }, "Malformed")]
    public void First_bytes_are_classified_as_early_as_they_allow(byte[] bytes, string expected)
    {
        Assert.Equal(expected, Judge(new ReadOnlySequence<byte>(bytes), out _).ToString());
    }

    [Fact]
    public async Task Judging_allocates_nothing()
    {
        var message = (await CaptureClientHelloAsync(Host))[5..];
        var third = message.Length / 3;
        var wire = Segments.Split(Records(message, [third, 2 * third]), third / 2, 2 * third);
        var host = new byte[256];
        Assert.Equal(TlsClientHello.Result.Found, TlsClientHello.TryGetSni(wire, host, out _));
        Assert.Equal(0, Allocations.Least(() => TlsClientHello.TryGetSni(wire, host, out _)));
    }

    private static TlsClientHello.Result Judge(ReadOnlySequence<byte> input, out string host)
    {
        var buffer = new byte[256];
        var result = TlsClientHello.TryGetSni(input, buffer, out var length);
        host = Encoding.Latin1.GetString(buffer, 0, length);
        Assert.True(result == TlsClientHello.Result.Found || length == 0, "a host length without a host");
        return result;
    }

    private static int CountRecords(byte[] wire)
    {
        var count = 0;
        for (var p = 0; p < wire.Length; p += 5 + BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(p + 3)))
        {
            count++;
        }

        return count;
    }

    /// <summary>A handshake message spread over records that end at <paramref name="cuts"/>.</summary>
    private static byte[] Records(byte[] message, int[] cuts)
    {
        var wire = new List<byte>();
        var start = 0;
        foreach (var end in cuts.Append(message.Length))
        {
            wire.AddRange(Record(message[start..end]));
            start = end;
        }

        return wire.ToArray();
    }

    private static byte[] Record(byte[] fragment, byte type = 0x16, byte major = 3, byte minor = 1) =>
        [type, major, minor, (byte)(fragment.Length >> 8), (byte)fragment.Length, .. fragment];

    private static byte[] Patch(byte[] data, int at, byte value)
    {
        var copy = data.ToArray();
        copy[at] = value;
        return copy;
    }

    /// <summary>A ClientHello handshake message (header included) with the given extensions.</summary>
    private static byte[] Hello(params byte[]?[]? extensions) => Build(extensions ?? [], 32, null, null, 0);

    private static byte[] HelloWith(byte[] extension, int sessionId = 32, byte[]? suites = null, byte[]? compression = null, int extensionsLengthDelta = 0) =>
        Build([extension], sessionId, suites, compression, extensionsLengthDelta);

    private static byte[] Build(byte[]?[] extensions, int sessionId, byte[]? suites, byte[]? compression, int extensionsLengthDelta)
    {
        suites ??= [0x13, 0x01, 0x13, 0x02];
        compression ??= [0];
        var all = extensions.Where(e => e is not null).SelectMany(e => e!).ToArray();
        byte[] body =
        [
            3, 3, .. new byte[32], (byte)sessionId, .. new byte[sessionId],
            (byte)(suites.Length >> 8), (byte)suites.Length, .. suites,
            (byte)compression.Length, .. compression,
            (byte)((all.Length + extensionsLengthDelta) >> 8), (byte)(all.Length + extensionsLengthDelta), .. all,
        ];
        return [1, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];
    }

    private static byte[] Extension(ushort type, byte[] data) => [(byte)(type >> 8), (byte)type, (byte)(data.Length >> 8), (byte)data.Length, .. data];

    private static byte[] Entry(byte type, string name)
    {
        var bytes = Encoding.Latin1.GetBytes(name);
        return [type, (byte)(bytes.Length >> 8), (byte)bytes.Length, .. bytes];
    }

    private static byte[] SniEntries(params byte[][] entries)
    {
        var list = entries.SelectMany(e => e).ToArray();
        return Extension(0, [(byte)(list.Length >> 8), (byte)list.Length, .. list]);
    }

    private static byte[] Sni(params string[] names) => SniEntries(names.Select(n => Entry(0, n)).ToArray());

    /// <summary>The first TLS record a real client sends, captured by a loopback listener.</summary>
    internal static async Task<byte[]> CaptureClientHelloAsync(string sni)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        var ssl = new SslStream(client.GetStream());
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = sni, RemoteCertificateValidationCallback = (_, _, _, _) => false });

        var buffer = new byte[16 * 1024 + 5];
        var have = 0;
        while (have < 5 || have < 5 + ((buffer[3] << 8) | buffer[4]))
        {
            var n = await server.ReceiveAsync(buffer.AsMemory(have));
            Assert.True(n > 0, "the client closed before its ClientHello");
            have += n;
        }

        server.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        ssl.Dispose();
        return buffer[..have];
    }
}
