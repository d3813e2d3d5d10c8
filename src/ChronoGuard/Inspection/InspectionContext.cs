namespace ChronoGuard.Inspection;

/// <summary>What an inspected tunnel needs (SPEC §7): leaves for the client side, trust for the upstream side.</summary>
internal sealed class InspectionContext
{
    public required LeafCertificates Leaves { get; init; }

    public required UpstreamTrust Trust { get; init; }

    /// <summary>
    /// Opens the configured CA and trust; null when inspection is not configured. Every problem is one
    /// line starting with the setting and its file (<c>Inspection:CaKeyFile /run/ca.key: …</c>).
    /// </summary>
    /// <exception cref="InspectionConfigException">A file is missing, unreadable, malformed, or the key is open to others.</exception>
    public static InspectionContext? Open(InspectionOptions options, TimeProvider time)
    {
        if (!options.Enabled)
        {
            return null;
        }

        CheckPrivate("Inspection:CaKeyFile", options.CaKeyFile);
        CertificateAuthority ca;
        try
        {
            ca = CertificateAuthority.Load(options.CaCertFile, options.CaKeyFile, time);
        }
        catch (InspectionConfigException ex)
        {
            var setting = ex.IsKeyFile ? "Inspection:CaKeyFile" : "Inspection:CaCertFile";
            throw new InspectionConfigException($"{setting} {ex.Message}", ex);
        }

        UpstreamTrust trust;
        try
        {
            trust = string.IsNullOrEmpty(options.UpstreamTrustFile) ? UpstreamTrust.System : UpstreamTrust.Load(options.UpstreamTrustFile);
        }
        catch (InspectionConfigException ex)
        {
            ca.Dispose();
            throw new InspectionConfigException($"Inspection:UpstreamTrustFile {ex.Message}", ex);
        }

        return new InspectionContext { Leaves = new LeafCertificates(ca, options.LeafCacheSize, time), Trust = trust };
    }

    /// <summary>A CA key that others can read lets them mint for any name the CA may: refused, as ssh refuses an open private key.</summary>
    private static void CheckPrivate(string setting, string file)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(file);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new InspectionConfigException($"{setting} {IoErrors.Line(file, ex)}", ex);
        }

        const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & Others) != 0)
        {
            throw new InspectionConfigException($"{setting} {file}: group or others can access the CA key (mode {Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0')}); run chmod 600 {file}");
        }
    }
}
