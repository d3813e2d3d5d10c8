namespace ChronoGuard.Proxy;

/// <summary>One listening address, the setting that named it (for errors), and its protocol.</summary>
internal sealed record ProxyListener(string Listen, string Setting, IConnectionFactory Factory);
