namespace ChronoGuard.Policy;

/// <summary>A policy file that cannot be used; the message is one line: file, JSON path, problem.</summary>
internal sealed class PolicyLoadException(string message) : Exception(message);
