namespace ChronoGuard.Proxy;

internal enum ConnectOutcome : byte
{
    Connected,
    NameNotResolved,
    Refused,
    Unreachable,
    TimedOut,
    NotAllowed,

    /// <summary>No file descriptor for the upstream socket (EMFILE/ENFILE): 503, never a silent close.</summary>
    NoDescriptors,

    /// <summary>An inspected request's upstream failed its TLS handshake or certificate validation (SPEC §7): 502.</summary>
    TlsInvalid,
}
