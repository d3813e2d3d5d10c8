using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;
using ChronoGuard.Net;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// SOCKS5 (RFC 1928) on a client connection, with username/password login (RFC 1929) as agent id and
/// token: greeting, login, one CONNECT request (IPv4, IPv6 or a domain name the proxy resolves), then
/// the same tunnel sequence, gate, guard, SNI check, budgets, recheck, drain and audit as an HTTP
/// CONNECT, through <see cref="RequestScope"/> and <see cref="TunnelRelay"/>. The whole negotiation
/// runs under the header timeout from the accept; every refusal is audited and answered with the
/// reply its phase allows (SPEC §8), then the connection closes.
/// </summary>
internal sealed class SocksConnection : ClientConnection
{
    public const byte Version = 5;
    public const byte NoAcceptableMethod = 0xFF;

    private const byte NoAuthentication = 0x00;
    private const byte UsernamePassword = 0x02;
    private const byte LoginVersion = 1;
    private const byte Connect = 1;
    private const byte AddressIPv4 = 1;
    private const byte AddressDomain = 3;
    private const byte AddressIPv6 = 4;

    // Reply codes (RFC 1928 §6).
    private const byte Succeeded = 0x00;
    private const byte GeneralFailure = 0x01;
    private const byte NotAllowedByRuleset = 0x02;
    private const byte HostUnreachable = 0x04;
    private const byte ConnectionRefused = 0x05;
    private const byte TtlExpired = 0x06;
    private const byte CommandNotSupported = 0x07;
    private const byte AddressTypeNotSupported = 0x08;

    // Fixed answers, made once: a negotiation allocates nothing for them.
    private static readonly byte[] ChooseNone = [Version, NoAuthentication];
    private static readonly byte[] ChooseLogin = [Version, UsernamePassword];
    private static readonly byte[] NoMethod = [Version, NoAcceptableMethod];
    private static readonly byte[] LoginOk = [LoginVersion, 0];
    private static readonly byte[] LoginFailed = [LoginVersion, 1];

    // A refusal's reply by code: no bound address to tell, so 0.0.0.0:0.
    private static readonly byte[][] Failures = [.. Enumerable.Range(0, AddressTypeNotSupported + 1).Select(code => new byte[] { Version, (byte)code, 0, AddressIPv4, 0, 0, 0, 0, 0, 0 })];

    // Room for a login (id and token, 255 bytes each) and a host as text (a 255-byte name, or an
    // address): rented for the negotiation only, given back before the tunnel begins.
    private const int ScratchBytes = 1024;

    private Phase _phase;
    private int _started;
    private bool _silent;
    private byte _replyCode;

    public SocksConnection(ProxyServer server, Socket socket, long id, string? listenerAgent)
        : base(server, socket, id, listenerAgent)
    {
    }

    private enum Phase : byte
    {
        Greeting,
        Login,
        Request,
    }

    protected override bool HeadStarted => Volatile.Read(ref _started) != 0 || base.HeadStarted;

    protected override async Task ServeAsync()
    {
        var scratch = ArrayPool<byte>.Shared.Rent(ScratchBytes);
        RequestScope? scope = null;
        try
        {
            scope = await NegotiateAsync(scratch).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }

        if (scope is not null)
        {
            Clock.Enter(ConnectionPhase.Busy);
            await RunScopeAsync(scope).ConfigureAwait(false);
        }
    }

    /// <summary>Greeting, login and request; the decided request, or null when the client was refused or left.</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private async ValueTask<RequestScope?> NegotiateAsync(byte[] scratch)
    {
        // Greeting: VER NMETHODS METHODS...
        var greeting = await ReadAsync(2).ConfigureAwait(false);
        if (greeting is not { } g)
        {
            return null;
        }

        if (First(g.Buffer, 0) != Version)
        {
            // Not SOCKS5 (SOCKS4, HTTP, noise): nothing we could say would be understood.
            _silent = true;
            return await RefuseEarlyAsync(g, 400, ParseErrors.Reason(ParseError.BadVersion)).ConfigureAwait(false);
        }

        var methods = First(g.Buffer, 1);
        Input.AdvanceTo(g.Buffer.Start);
        if (await ReadAsync(2 + methods).ConfigureAwait(false) is not { } all)
        {
            return null;
        }

        var offered = all.Buffer.Slice(2, methods);
        var login = offered.PositionOf(UsernamePassword) is not null;
        var open = !login && offered.PositionOf(NoAuthentication) is not null && (ListenerAgent is not null || !Context.Gate.RequiresCredentials);
        if (!login && !open)
        {
            // No method we accept: a login is required here (SPEC §8), and the client offered none.
            return await RefuseEarlyAsync(all, 407, Reasons.AuthRequired).ConfigureAwait(false);
        }

        Input.AdvanceTo(all.Buffer.GetPosition(2 + methods));
        await Transport.SendAsync(login ? ChooseLogin : ChooseNone).ConfigureAwait(false);

        var idLength = 0;
        var tokenLength = 0;
        if (login)
        {
            _phase = Phase.Login;
            if (await ReadLoginAsync(scratch).ConfigureAwait(false) is not { } pair)
            {
                return null;
            }

            (idLength, tokenLength) = pair;
        }

        _phase = Phase.Request;
        return await ReadRequestAsync(scratch, login, idLength, tokenLength).ConfigureAwait(false);
    }

    /// <summary>RFC 1929: VER ULEN UNAME PLEN PASSWD; checked now, so a failed login is answered as one (status 1).</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private async ValueTask<(int Id, int Token)?> ReadLoginAsync(byte[] scratch)
    {
        if (await ReadAsync(2).ConfigureAwait(false) is not { } head)
        {
            return null;
        }

        if (First(head.Buffer, 0) != LoginVersion)
        {
            return await RefuseLoginAsync(head, 400, ParseErrors.Reason(ParseError.BadVersion)).ConfigureAwait(false);
        }

        var idLength = First(head.Buffer, 1);
        Input.AdvanceTo(head.Buffer.Start);
        if (await ReadAsync(2 + idLength + 1).ConfigureAwait(false) is not { } withId)
        {
            return null;
        }

        var tokenLength = First(withId.Buffer, 2 + idLength);
        Input.AdvanceTo(withId.Buffer.Start);
        var total = 3 + idLength + tokenLength;
        if (await ReadAsync(total).ConfigureAwait(false) is not { } whole)
        {
            return null;
        }

        whole.Buffer.Slice(2, idLength).CopyTo(scratch);
        whole.Buffer.Slice(3 + idLength, tokenLength).CopyTo(scratch.AsSpan(idLength));
        if (Context.Gate.CheckCredentials(AgentCredentials.FromPair(scratch.AsSpan(0, idLength), scratch.AsSpan(idLength, tokenLength)), ListenerAgent)
            is AuthOutcome.Invalid or AuthOutcome.Missing)
        {
            return await RefuseLoginAsync(whole, 407, Reasons.BadCredentials).ConfigureAwait(false);
        }

        Input.AdvanceTo(whole.Buffer.GetPosition(total));
        await Transport.SendAsync(LoginOk).ConfigureAwait(false);
        return (idLength, tokenLength);
    }

    private async ValueTask<(int, int)?> RefuseLoginAsync(ReadResult read, int status, string reason)
    {
        await RefuseEarlyAsync(read, status, reason).ConfigureAwait(false);
        return null;
    }

    /// <summary>VER CMD RSV ATYP DST.ADDR DST.PORT; decided here, with the login kept in <paramref name="scratch"/>.</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private async ValueTask<RequestScope?> ReadRequestAsync(byte[] scratch, bool login, int idLength, int tokenLength)
    {
        if (await ReadAsync(5).ConfigureAwait(false) is not { } head)
        {
            return null;
        }

        var buffer = head.Buffer;
        if (First(buffer, 0) != Version)
        {
            return await RefuseRequestAsync(head, GeneralFailure, 400, ParseErrors.Reason(ParseError.BadVersion)).ConfigureAwait(false);
        }

        if (First(buffer, 1) != Connect)
        {
            // BIND and UDP ASSOCIATE are not offered (SPEC §8).
            return await RefuseRequestAsync(head, CommandNotSupported, 400, ParseErrors.Reason(ParseError.BadMethod)).ConfigureAwait(false);
        }

        if (First(buffer, 2) != 0)
        {
            return await RefuseRequestAsync(head, GeneralFailure, 400, ParseErrors.Reason(ParseError.BadRequestLine)).ConfigureAwait(false);
        }

        var type = First(buffer, 3);
        var addressLength = type switch
        {
            AddressIPv4 => 4,
            AddressIPv6 => 16,
            AddressDomain => 1 + First(buffer, 4),
            _ => -1,
        };
        if (addressLength < 0)
        {
            return await RefuseRequestAsync(head, AddressTypeNotSupported, 400, ParseErrors.Reason(ParseError.BadTarget)).ConfigureAwait(false);
        }

        Input.AdvanceTo(buffer.Start);
        var total = 4 + addressLength + 2;
        if (await ReadAsync(total).ConfigureAwait(false) is not { } whole)
        {
            return null;
        }

        var hostAt = idLength + tokenLength;
        var hostLength = Host(whole.Buffer.Slice(4, addressLength), type, scratch.AsSpan(hostAt, 256));
        Span<byte> portBytes = stackalloc byte[2];
        whole.Buffer.Slice(4 + addressLength, 2).CopyTo(portBytes);
        var port = BinaryPrimitives.ReadUInt16BigEndian(portBytes);
        if (hostLength <= 0 || port == 0)
        {
            return await RefuseRequestAsync(whole, GeneralFailure, 400, ParseErrors.Reason(ParseError.BadTarget)).ConfigureAwait(false);
        }

        Input.AdvanceTo(whole.Buffer.GetPosition(total));
        var scope = new RequestScope(this, FrontEnd.Socks, null);
        scope.Decide(new GateRequest
        {
            FrontEnd = FrontEnd.Socks,
            Host = scratch.AsSpan(hostAt, hostLength),
            Port = port,
            Credentials = login ? AgentCredentials.FromPair(scratch.AsSpan(0, idLength), scratch.AsSpan(idLength, tokenLength)) : AgentCredentials.None,
            ListenerAgent = ListenerAgent,
        });
        return scope;
    }

    /// <summary>The destination as the host text every later step reads (an address literal or a checked name); 0 when invalid.</summary>
    private static int Host(ReadOnlySequence<byte> address, byte type, Span<byte> into)
    {
        Span<byte> raw = stackalloc byte[256];
        address.CopyTo(raw);
        switch (type)
        {
            case AddressIPv4:
            case AddressIPv6:
                var ip = new IPAddress(raw[..(type == AddressIPv4 ? 4 : 16)]);
                return ip.TryFormat(into, out var written) ? written : 0;
            default:
                var name = raw[1..(int)address.Length];
                if (!HttpHeadParser.IsValidName(name))
                {
                    return 0;
                }

                name.CopyTo(into);
                return name.Length;
        }
    }

    private async ValueTask<RequestScope?> RefuseRequestAsync(ReadResult read, byte reply, int status, string reason)
    {
        _replyCode = reply;
        return await RefuseEarlyAsync(read, status, reason).ConfigureAwait(false);
    }

    /// <summary>A refusal before any request was decided: audited, answered as its phase allows, then the close.</summary>
    private async ValueTask<RequestScope?> RefuseEarlyAsync(ReadResult read, int status, string reason)
    {
        Input.AdvanceTo(read.Buffer.End);
        await RefuseAsync(new Refusal(status, "DENY", reason), audit: true).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Waits until at least <paramref name="count"/> bytes are buffered; null when the client left, the
    /// connection was aborted, or the header timeout fired (then refused 408 here). The caller advances.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private async ValueTask<ReadResult?> ReadAsync(int count)
    {
        var result = await Input.ReadAtLeastAsync(count).ConfigureAwait(false);
        if (!result.Buffer.IsEmpty)
        {
            Volatile.Write(ref _started, 1);
        }

        if (result.Buffer.Length >= count && !result.IsCanceled && !IsAborted)
        {
            return result;
        }

        Input.AdvanceTo(result.Buffer.End);
        if (result.IsCanceled && Clock.Fired == TimeoutKind.Header && !IsAborted)
        {
            await RefuseAsync(new Refusal(408, "DENY", ProxyReasons.HeaderTimeout), audit: true).ConfigureAwait(false);
        }
        else if (result.IsCompleted && !result.Buffer.IsEmpty && !IsAborted)
        {
            // The client stopped in the middle of a message: recorded, nothing to answer.
            Context.Gate.RecordRefusal(Info, new Refusal(400, "DENY", ParseErrors.Reason(ParseError.TruncatedHead)));
        }

        return null;
    }

    private static byte First(in ReadOnlySequence<byte> buffer, int index)
    {
        var at = buffer.Slice(index, 1);
        return at.First.Span[0];
    }

    /// <summary>Each phase's way to say no: "no acceptable method", a failed login, or a request reply code.</summary>
    protected override async ValueTask WriteRefusalAsync(Refusal refusal)
    {
        if (_silent)
        {
            return;
        }

        var reply = _phase switch
        {
            Phase.Greeting => NoMethod,
            Phase.Login => LoginFailed,
            _ => Failures[_replyCode != 0 ? _replyCode : ReplyFor(refusal)],
        };
        await Transport.SendAsync(reply).ConfigureAwait(false);
    }

    /// <summary>SPEC §8: the reply code a decided request's refusal or failure maps to.</summary>
    private static byte ReplyFor(in Refusal refusal) => refusal.Status switch
    {
        403 or 407 or 429 => NotAllowedByRuleset,
        502 when refusal.Reason == ProxyReasons.UpstreamRefused => ConnectionRefused,
        502 => HostUnreachable,
        504 => TtlExpired,
        _ => GeneralFailure,
    };

    /// <summary>Reply 0x00 with the address the tunnel goes to, in its own family (the one allocation of a negotiation's answers).</summary>
    public override async ValueTask SendEstablishedAsync(IPEndPoint dialed)
    {
        var address = dialed.Address.IsIPv4MappedToIPv6 ? dialed.Address.MapToIPv4() : dialed.Address;
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var reply = new byte[v4 ? 10 : 22];
        reply[0] = Version;
        reply[1] = Succeeded;
        reply[3] = v4 ? AddressIPv4 : AddressIPv6;
        address.TryWriteBytes(reply.AsSpan(4), out var written);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(4 + written), (ushort)dialed.Port);
        await Transport.SendAsync(reply).ConfigureAwait(false);
    }
}
