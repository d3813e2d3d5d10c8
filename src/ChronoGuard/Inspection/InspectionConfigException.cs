namespace ChronoGuard.Inspection;

/// <summary>A CA, key or trust file that cannot be used; the message is the one line to print, naming the file.</summary>
internal sealed class InspectionConfigException : Exception
{
    public InspectionConfigException(string message)
        : base(message)
    {
    }

    public InspectionConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>The problem is with the CA's key file (else its certificate file), for the setting a start error names.</summary>
    public bool IsKeyFile { get; init; }
}
