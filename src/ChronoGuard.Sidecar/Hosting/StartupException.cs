namespace ChronoGuard.Sidecar.Hosting;

/// <summary>A start failure the operator can fix (port in use, unreadable file); its message is the one line printed.</summary>
internal sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
