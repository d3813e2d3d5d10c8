namespace ChronoGuard.Tests.Support;

internal sealed record RawResponse(int Status, string StatusLine, Dictionary<string, string> Headers)
{
    public string? this[string name] => Headers.TryGetValue(name, out var v) ? v : null;

    public static RawResponse Parse(string head)
    {
        var lines = head.Split("\r\n");
        var status = int.Parse(lines[0].AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }

        return new RawResponse(status, lines[0], headers);
    }
}
