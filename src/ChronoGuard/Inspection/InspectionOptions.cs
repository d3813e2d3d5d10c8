namespace ChronoGuard.Inspection;

/// <summary>The <c>Inspection</c> configuration section (SPEC §7); inspection is off unless the CA files are set.</summary>
internal sealed class InspectionOptions
{
    public const int DefaultLeafCacheSize = 1024;

    /// <summary>PEM certificate of the CA that signs leaves (<c>chronoguard ca init</c> writes one).</summary>
    public string CaCertFile { get; set; } = string.Empty;

    /// <summary>PEM ECDSA P-256 private key of that CA; <c>run</c> refuses one group or others can read.</summary>
    public string CaKeyFile { get; set; } = string.Empty;

    /// <summary>PEM bundle of the roots origins are judged against; empty: the system trust store.</summary>
    public string UpstreamTrustFile { get; set; } = string.Empty;

    /// <summary>Hosts whose leaves stay cached.</summary>
    public int LeafCacheSize { get; set; } = DefaultLeafCacheSize;

    /// <summary>Whether inspection is configured (the policy loader refuses <c>inspect</c> and <c>credentials</c> otherwise).</summary>
    public bool Enabled => CaCertFile.Length > 0;
}
