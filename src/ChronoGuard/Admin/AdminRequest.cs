namespace ChronoGuard.Admin;

/// <summary>One authenticated admin request: the actor is the name of the token that was presented.</summary>
internal sealed record AdminRequest(string Method, string Path, string Query, byte[] Body, string Actor)
{
    /// <summary>A query parameter's decoded value, or null.</summary>
    public string? Param(string name)
    {
        foreach (var pair in Query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString((eq < 0 ? pair : pair[..eq]).Replace('+', ' '));
            if (string.Equals(key, name, StringComparison.Ordinal))
            {
                return eq < 0 ? string.Empty : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            }
        }

        return null;
    }
}
