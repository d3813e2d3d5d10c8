using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A raw client of an inspected tunnel: CONNECT through the proxy, then TLS with any SNI the test
/// chooses, then HTTP/1.1 written and read byte for byte (hostile heads, exact responses).
/// </summary>
internal sealed class TlsTunnelClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _buffered;

    private TlsTunnelClient(Socket socket, SslStream tls)
    {
        _socket = socket;
        Tls = tls;
    }

    public SslStream Tls { get; }

    /// <summary>
    /// CONNECTs to <paramref name="target"/> and completes TLS with <paramref name="sni"/>, trusting
    /// <paramref name="root"/>. With <paramref name="early"/>, the ClientHello leaves in the same write
    /// as the CONNECT head, before the proxy's 200 (a client that does not wait for it).
    /// </summary>
    public static async Task<TlsTunnelClient> OpenAsync(IPEndPoint proxy, string target, string sni, X509Certificate2 root, bool early = false, string? extraHead = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy);
        var connect = Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extraHead}\r\n");
        var network = new NetworkStream(socket, ownsSocket: true);
        Stream inner = network;
        if (early)
        {
            inner = new ConnectFirstStream(network, connect);
        }
        else
        {
            await network.WriteAsync(connect);
            var head = await ReadConnectReplyAsync(network);
            if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            {
                throw new IOException("CONNECT refused: " + head);
            }
        }

        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        var client = new TlsTunnelClient(socket, tls);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = sni,
                ApplicationProtocols = [SslApplicationProtocol.Http11, SslApplicationProtocol.Http2],
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => InspectionRig.ChainsTo(root, certificate, errors),
            });
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return client;
    }

    public Task SendAsync(string ascii) => Tls.WriteAsync(Encoding.ASCII.GetBytes(ascii)).AsTask();

    /// <summary>Reads through the first <paramref name="marker"/> (a streamed response's first event, say); what came before it.</summary>
    public async Task<string> ReadThroughAsync(string marker, int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        return await ReadLineAsync(marker, cts.Token);
    }

    /// <summary>One response: its head, and its body (framed by Content-Length or chunked; else empty).</summary>
    public async Task<(RawResponse Head, string Body)> ReadResponseAsync(int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var head = RawResponse.Parse(await ReadLineAsync("\r\n\r\n", cts.Token));
        if (head["Transfer-Encoding"] is "chunked")
        {
            var body = new StringBuilder();
            while (true)
            {
                var size = Convert.ToInt32((await ReadLineAsync("\r\n", cts.Token)).Split(';')[0], 16);
                body.Append(await TakeAsync(size, cts.Token));
                await ReadLineAsync("\r\n", cts.Token);
                if (size == 0)
                {
                    return (head, body.ToString());
                }
            }
        }

        var length = head["Content-Length"] is { } cl ? int.Parse(cl, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return (head, await TakeAsync(length, cts.Token));
    }

    private async Task<string> ReadLineAsync(string end, CancellationToken ct)
    {
        var terminator = Encoding.ASCII.GetBytes(end);
        while (true)
        {
            var at = _buffer.AsSpan(0, _buffered).IndexOf(terminator);
            if (at >= 0)
            {
                var line = Encoding.ASCII.GetString(_buffer, 0, at);
                Consume(at + terminator.Length);
                return line;
            }

            await FillAsync(ct);
        }
    }

    private async Task<string> TakeAsync(int count, CancellationToken ct)
    {
        while (_buffered < count)
        {
            await FillAsync(ct);
        }

        var text = Encoding.ASCII.GetString(_buffer, 0, count);
        Consume(count);
        return text;
    }

    private void Consume(int count)
    {
        Buffer.BlockCopy(_buffer, count, _buffer, 0, _buffered - count);
        _buffered -= count;
    }

    /// <summary>True when the proxy closes the TLS connection (EOF or reset) within the timeout.</summary>
    public async Task<bool> ClosedAsync(int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            while (true)
            {
                var n = await Tls.ReadAsync(_buffer.AsMemory(_buffered), cts.Token);
                if (n == 0)
                {
                    return true;
                }

                _buffered += n;
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task FillAsync(CancellationToken ct)
    {
        var n = await Tls.ReadAsync(_buffer.AsMemory(_buffered), ct);
        if (n == 0)
        {
            throw new IOException($"closed after {_buffered} bytes: {Encoding.ASCII.GetString(_buffer, 0, _buffered)}");
        }

        _buffered += n;
    }

    private static async Task<string> ReadConnectReplyAsync(Stream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                throw new IOException("closed before the CONNECT reply: " + Encoding.ASCII.GetString([.. head]));
            }

            head.Add(one[0]);
        }

        return Encoding.ASCII.GetString([.. head]);
    }

    public async ValueTask DisposeAsync()
    {
        await Tls.DisposeAsync();
        _socket.Dispose();
    }

    /// <summary>Sends the CONNECT head in the same write as the first TLS bytes, and reads the proxy's 200 away before TLS sees a byte.</summary>
    private sealed class ConnectFirstStream(NetworkStream inner, byte[] connect) : Stream
    {
        private bool _sent;
        private bool _replied;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_sent)
            {
                _sent = true;
                await inner.WriteAsync(connect.Concat(buffer.ToArray()).ToArray(), cancellationToken);
                return;
            }

            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_replied)
            {
                _replied = true;
                var head = await ReadConnectReplyAsync(inner);
                if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                {
                    throw new IOException("CONNECT refused: " + head);
                }
            }

            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
