using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChronoGuard.Tests.Support;

/// <summary>A raw socket to the proxy, for hostile input and exact protocol checks.</summary>
internal sealed class RawClient : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _buffered;

    private RawClient(Socket socket)
    {
        Socket = socket;
    }

    public Socket Socket { get; }

    public static async Task<RawClient> ConnectAsync(IPEndPoint endpoint)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(endpoint);
        return new RawClient(s);
    }

    /// <summary>Connects from a port known before the connect (told to <paramref name="bound"/>): a test standing in for the kernel maps it.</summary>
    public static async Task<RawClient> ConnectAsync(IPEndPoint endpoint, Action<IPEndPoint> bound)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        bound((IPEndPoint)s.LocalEndPoint!);
        await s.ConnectAsync(endpoint);
        return new RawClient(s);
    }

    public Task SendAsync(string ascii) => SendAsync(Encoding.ASCII.GetBytes(ascii));

    public async Task SendAsync(byte[] data)
    {
        var sent = 0;
        while (sent < data.Length)
        {
            sent += await Socket.SendAsync(data.AsMemory(sent));
        }
    }

    /// <summary>Reads one response head (through the blank line); leftover bytes stay buffered.</summary>
    public async Task<RawResponse> ReadHeadAsync(int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        while (true)
        {
            var end = _buffer.AsSpan(0, _buffered).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                var head = Encoding.ASCII.GetString(_buffer, 0, end);
                var rest = _buffered - (end + 4);
                Buffer.BlockCopy(_buffer, end + 4, _buffer, 0, rest);
                _buffered = rest;
                return RawResponse.Parse(head);
            }

            var n = await Socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new IOException($"connection closed after {_buffered} bytes: {Encoding.ASCII.GetString(_buffer, 0, _buffered)}");
            }

            _buffered += n;
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (after any buffered ones).</summary>
    public async Task<byte[]> ReadExactlyAsync(int count, int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var result = new byte[count];
        var have = Math.Min(count, _buffered);
        Buffer.BlockCopy(_buffer, 0, result, 0, have);
        Buffer.BlockCopy(_buffer, have, _buffer, 0, _buffered - have);
        _buffered -= have;
        while (have < count)
        {
            var n = await Socket.ReceiveAsync(result.AsMemory(have), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new IOException($"closed after {have} of {count} bytes");
            }

            have += n;
        }

        return result;
    }

    /// <summary>Reads until the peer closes; returns what arrived (buffered bytes first).</summary>
    public async Task<byte[]> ReadToEndAsync(int timeoutMs = 10_000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        using var ms = new MemoryStream();
        ms.Write(_buffer, 0, _buffered);
        _buffered = 0;
        var chunk = new byte[16 * 1024];
        while (true)
        {
            int n;
            try
            {
                n = await Socket.ReceiveAsync(chunk, SocketFlags.None, cts.Token);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
                break;
            }

            if (n == 0)
            {
                break;
            }

            ms.Write(chunk, 0, n);
        }

        return ms.ToArray();
    }

    public void Dispose() => Socket.Dispose();
}
