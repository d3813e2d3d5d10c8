using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ChronoGuard.Resolution;

namespace ChronoGuard.Proxy;

/// <summary>
/// A and AAAA questions put to one DNS server (UDP, then TCP when the answer is truncated), for
/// <c>policy explain --resolver</c>: what a given server answers, where the machine explain runs on
/// resolves differently from the sidecar's pod. The answer is read by the DNS guard's own reader
/// (<see cref="DnsAnswers.Build"/>): only records of the question's CNAME chain count.
/// </summary>
internal sealed class DnsServerResolver(IPEndPoint server) : IDnsResolver
{
    private const int MaxAddresses = 256;

    public IPEndPoint Server => server;

    /// <inheritdoc />
    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var name = Encoding.ASCII.GetBytes(host.TrimEnd('.'));
        var addresses = new List<IPAddress>();
        foreach (var type in (ushort[])[DnsWire.TypeA, DnsWire.TypeAaaa])
        {
            var id = (ushort)RandomNumberGenerator.GetInt32(ushort.MaxValue + 1);
            var query = new byte[DnsWire.MaxNameWire + 64];
            var length = DnsAnswers.WriteQuery(query, id, name, type);
            if (length < 0)
            {
                return [];
            }

            var response = await AskUdpAsync(query.AsMemory(0, length), id, cancellationToken).ConfigureAwait(false);
            if (Read(response, id, name, type, addresses) == DnsBuild.Truncated)
            {
                response = await AskTcpAsync(query.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                Read(response, id, name, type, addresses);
            }
        }

        return [.. addresses];
    }

    private async ValueTask<byte[]> AskUdpAsync(ReadOnlyMemory<byte> query, ushort id, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var buffer = new byte[DnsWire.MaxMessage];
        while (true)
        {
            // A connected socket hears only the server; a datagram with another ID is a stale answer.
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n >= DnsWire.HeaderLength && DnsWire.Id(buffer) == id)
            {
                return buffer[..n];
            }
        }
    }

    private async ValueTask<byte[]> AskTcpAsync(ReadOnlyMemory<byte> query, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed.AsMemory(2));
        await socket.SendAsync(framed, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var prefix = new byte[2];
        await ReceiveExactlyAsync(socket, prefix, cancellationToken).ConfigureAwait(false);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await ReceiveExactlyAsync(socket, message, cancellationToken).ConfigureAwait(false);
        return message;
    }

    private static async ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> into, CancellationToken cancellationToken)
    {
        while (!into.IsEmpty)
        {
            var n = await socket.ReceiveAsync(into, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }

            into = into[n..];
        }
    }

    /// <summary>The addresses of one answer, added in the order given; NXDOMAIN, a failure or a malformed answer adds none.</summary>
    private static DnsBuild Read(byte[] response, ushort id, byte[] name, ushort type, List<IPAddress> into)
    {
        Span<UInt128> keys = stackalloc UInt128[MaxAddresses];
        Span<ushort> ttls = stackalloc ushort[MaxAddresses * 2];
        var facts = new DnsAnswerFacts(keys, ttls);
        var rebuilt = new byte[DnsWire.MaxMessage];
        var outcome = DnsAnswers.Build(response, id, name, type, opt: false, rebuilt, ref facts, out _);
        if (outcome != DnsBuild.Ok)
        {
            return outcome;
        }

        Span<byte> bytes = stackalloc byte[16];
        foreach (var key in keys[..facts.AddressCount])
        {
            BinaryPrimitives.WriteUInt128BigEndian(bytes, key);
            var address = key >> 32 == 0xFFFF ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
            if (!into.Contains(address))
            {
                into.Add(address);
            }
        }

        return outcome;
    }
}
