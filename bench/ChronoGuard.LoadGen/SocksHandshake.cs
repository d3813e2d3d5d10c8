using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ChronoGuard.LoadGen;

/// <summary>
/// The client side of a SOCKS5 negotiation over a raw socket: greeting, login when the proxy asks for
/// it, CONNECT, reply. One instance per worker, reused for every tunnel; nothing is allocated per tunnel.
/// </summary>
/// <remarks>
/// Each step waits for the proxy's answer before the next message, as RFC 1928 has it (no optimistic
/// pipelining, which not every server accepts), so a tunnel costs two round trips, three with a login.
/// A well-behaved proxy sends nothing beyond each answer until the client speaks inside the tunnel,
/// so a read may ask for more than the answer's length and any surplus is a protocol error.
/// </remarks>
internal sealed class SocksHandshake(SocksMessages messages)
{
    // The longest answer is a reply with a 255-byte domain: 4 + 1 + 255 + 2.
    private readonly byte[] _buf = new byte[512];

    /// <summary>Bytes received and sent by every negotiation of this instance.</summary>
    public long BytesRead { get; private set; }
    public long BytesWritten { get; private set; }

    /// <summary>Negotiates a tunnel on a connected socket; -1 when it is open, else the error kind the proxy answered.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> OpenAsync(Socket socket, CancellationToken ct)
    {
        await SendAsync(socket, messages.Greeting, ct).ConfigureAwait(false);
        await ReceiveExactlyAsync(socket, 2, ct).ConfigureAwait(false);
        if (_buf[0] != SocksMessages.Version)
        {
            throw new InvalidDataException("not a SOCKS5 method selection");
        }
        switch (_buf[1])
        {
            case SocksMessages.NoAuthentication:
                break;
            case SocksMessages.UsernamePassword when messages.Login is { } login:
                await SendAsync(socket, login, ct).ConfigureAwait(false);
                await ReceiveExactlyAsync(socket, 2, ct).ConfigureAwait(false);
                if (_buf[0] != SocksMessages.LoginVersion)
                {
                    throw new InvalidDataException("not an RFC 1929 login status");
                }
                if (_buf[1] != 0)
                {
                    return ErrorKinds.SocksLoginFailed;
                }
                break;
            case 0xFF:
                return ErrorKinds.SocksNoMethod;
            default:
                throw new InvalidDataException("the SOCKS5 proxy chose a method that was not offered");
        }

        await SendAsync(socket, messages.Request, ct).ConfigureAwait(false);
        // VER REP RSV ATYP and the first address byte tell the reply's length.
        var got = await ReceiveAtLeastAsync(socket, 5, ct).ConfigureAwait(false);
        if (_buf[0] != SocksMessages.Version)
        {
            throw new InvalidDataException("not a SOCKS5 reply");
        }
        var length = _buf[3] switch
        {
            1 => 4 + 4 + 2,
            4 => 4 + 16 + 2,
            3 => 4 + 1 + _buf[4] + 2,
            _ => throw new InvalidDataException("SOCKS5 reply with an unknown address type"),
        };
        if (got < length)
        {
            got += await ReceiveAtLeastAsync(socket, length - got, ct, got).ConfigureAwait(false);
        }
        if (got > length)
        {
            throw new InvalidDataException("proxy sent tunnel data before the client spoke");
        }
        return _buf[1] == 0 ? -1 : ErrorKinds.SocksReply(_buf[1]);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(Socket socket, byte[] message, CancellationToken ct)
    {
        var sent = 0;
        while (sent < message.Length)
        {
            sent += await socket.SendAsync(message.AsMemory(sent), SocketFlags.None, ct).ConfigureAwait(false);
        }
        BytesWritten += message.Length;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveExactlyAsync(Socket socket, int count, CancellationToken ct)
    {
        if (await ReceiveAtLeastAsync(socket, count, ct).ConfigureAwait(false) != count)
        {
            throw new InvalidDataException("the SOCKS5 proxy answered more than it was asked");
        }
    }

    /// <summary>Reads into the buffer from <paramref name="offset"/> until at least <paramref name="count"/> bytes arrived; returns how many did.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReceiveAtLeastAsync(Socket socket, int count, CancellationToken ct, int offset = 0)
    {
        var got = 0;
        while (got < count)
        {
            var n = await socket.ReceiveAsync(_buf.AsMemory(offset + got), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new EndOfStreamException("the SOCKS5 proxy closed the connection during the negotiation");
            }
            got += n;
            BytesRead += n;
        }
        return got;
    }
}
