using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChronoGuard.LoadGen;

/// <summary>The client's SOCKS5 messages for one run (RFC 1928 greeting and CONNECT, RFC 1929 login), encoded once.</summary>
internal sealed class SocksMessages
{
    public const byte Version = 5;
    public const byte NoAuthentication = 0x00;
    public const byte UsernamePassword = 0x02;
    public const byte LoginVersion = 1;

    /// <summary>VER NMETHODS METHODS: no authentication, plus username/password when credentials were given (as curl offers them).</summary>
    public required byte[] Greeting { get; init; }
    /// <summary>VER ULEN UNAME PLEN PASSWD, or null without credentials.</summary>
    public byte[]? Login { get; init; }
    /// <summary>VER CMD=CONNECT RSV ATYP DST.ADDR DST.PORT.</summary>
    public required byte[] Request { get; init; }

    /// <param name="credentials">user:token, or null.</param>
    /// <param name="address">The target's address, or null to send <paramref name="host"/> as a domain name.</param>
    public static SocksMessages Create(string? credentials, string host, IPAddress? address, int port)
    {
        byte[]? login = null;
        if (credentials is not null)
        {
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            var user = Encoding.UTF8.GetBytes(credentials[..colon]);
            var token = Encoding.UTF8.GetBytes(credentials[(colon + 1)..]);
            login = [LoginVersion, (byte)user.Length, .. user, (byte)token.Length, .. token];
        }
        byte[] destination = address is null
            ? [3, (byte)Encoding.ASCII.GetByteCount(host), .. Encoding.ASCII.GetBytes(host)]
            : [address.AddressFamily == AddressFamily.InterNetwork ? (byte)1 : (byte)4, .. address.GetAddressBytes()];
        var request = new byte[3 + destination.Length + 2];
        request[0] = Version;
        request[1] = 1; // CONNECT
        destination.CopyTo(request, 3);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(3 + destination.Length), (ushort)port);
        return new SocksMessages
        {
            Greeting = login is null ? [Version, 1, NoAuthentication] : [Version, 2, NoAuthentication, UsernamePassword],
            Login = login,
            Request = request,
        };
    }
}
