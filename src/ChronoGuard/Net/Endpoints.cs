using System.Net;

namespace ChronoGuard.Net;

internal static class Endpoints
{
    /// <summary>Parses HOST:PORT ([v6]:PORT, or "*:PORT" for every interface); names are not resolved.</summary>
    public static IPEndPoint Parse(string value, string settingName)
    {
        if (!TryParse(value, out var endpoint))
        {
            throw new FormatException($"{settingName}: '{value}' is not HOST:PORT with an IP address and a port 0-65535");
        }

        return endpoint;
    }

    public static bool TryParse(string value, out IPEndPoint endpoint)
    {
        endpoint = null!;
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            return false;
        }

        var host = value.AsSpan(0, colon);
        if (host.Length > 2 && host[0] == '[' && host[^1] == ']')
        {
            host = host[1..^1];
        }

        IPAddress? address;
        if (host is "*" or "0.0.0.0")
        {
            address = IPAddress.Any;
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (!IPAddress.TryParse(host, out address))
        {
            return false;
        }

        endpoint = new IPEndPoint(address, port);
        return true;
    }
}
