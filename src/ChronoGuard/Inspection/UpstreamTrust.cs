using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ChronoGuard.Inspection;

/// <summary>
/// How an inspected tunnel judges the origin's certificate (SPEC §7): the system trust store, or only
/// the roots of <c>Inspection:UpstreamTrustFile</c>. Either way the certificate must be for the CONNECT
/// host, since a credential is injected only toward a name the certificate proves.
/// </summary>
internal sealed class UpstreamTrust
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", null);

    private readonly X509Certificate2Collection? _roots;

    private UpstreamTrust(X509Certificate2Collection? roots, string? source)
    {
        _roots = roots;
        Source = source;
    }

    /// <summary>The system trust store, as SslStream judged it.</summary>
    public static UpstreamTrust System { get; } = new(null, null);

    /// <summary>The trust file, or null for the system store.</summary>
    public string? Source { get; }

    /// <summary>
    /// The chain policy the handshake itself should build with (null: the system store, SslStream's
    /// default). Given to <see cref="SslClientAuthenticationOptions.CertificateChainPolicy"/>, it makes
    /// SslStream build the one chain that counts: without it SslStream first built one against the
    /// whole system store (an OpenSSL store of every system root, sorted by name on each handshake:
    /// a third of an inspected tunnel's CPU in <c>perf/tunnel-ab inspect-connect-noclose … perf</c>)
    /// and <see cref="Validate"/> then built the custom one. A new copy per handshake: a policy's
    /// collections are not for sharing between concurrent builds.
    /// </summary>
    public X509ChainPolicy? NewChainPolicy()
    {
        if (_roots is null)
        {
            return null;
        }

        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(_roots);
        policy.ApplicationPolicy.Add(ServerAuth);
        return policy;
    }

    /// <summary>Trusts only the certificates of a PEM bundle; a file without one is a one-line error naming it.</summary>
    public static UpstreamTrust Load(string pemFile)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(pemFile);
        }
        catch (CryptographicException)
        {
            throw new InspectionConfigException($"{pemFile}: not a PEM certificate bundle");
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new InspectionConfigException(IoErrors.Line(pemFile, ex), ex);
        }

        if (roots.Count == 0)
        {
            throw new InspectionConfigException($"{pemFile}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        return new UpstreamTrust(roots, pemFile);
    }

    /// <summary>
    /// For <see cref="SslClientAuthenticationOptions.RemoteCertificateValidationCallback"/>: whether the
    /// origin's certificate chains to a trusted root and names <paramref name="host"/>.
    /// </summary>
    public bool Validate(string host, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        var name = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;
        if (_roots is null)
        {
            // SslStream checked the chain against the system store and the name against TargetHost;
            // the name is checked again here in case TargetHost was not the CONNECT host.
            return errors == SslPolicyErrors.None && MatchesHost(certificate, name);
        }

        if (!MatchesHost(certificate, name))
        {
            return false;
        }

        if (chain is { ChainPolicy: { TrustMode: X509ChainTrustMode.CustomRootTrust } used } && HoldsOnlyOurRoots(used))
        {
            // SslStream built the chain with NewChainPolicy's roots: its verdict is the one that counts.
            return errors == SslPolicyErrors.None;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_roots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(ServerAuth);
        if (chain is not null)
        {
            // The intermediates the origin sent: SslStream puts them here.
            custom.ChainPolicy.ExtraStore.AddRange(chain.ChainPolicy.ExtraStore);
        }

        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        try
        {
            return custom.Build(leaf);
        }
        finally
        {
            if (!ReferenceEquals(leaf, certificate))
            {
                leaf.Dispose();
            }
        }
    }

    private bool HoldsOnlyOurRoots(X509ChainPolicy used)
    {
        if (used.CustomTrustStore.Count != _roots!.Count || used.ApplicationPolicy["1.3.6.1.5.5.7.3.1"] is null)
        {
            return false;
        }

        for (var i = 0; i < _roots.Count; i++)
        {
            if (!ReferenceEquals(used.CustomTrustStore[i], _roots[i]) && !used.CustomTrustStore[i].RawDataMemory.Span.SequenceEqual(_roots[i].RawDataMemory.Span))
            {
                return false;
            }
        }

        return true;
    }

    private static bool MatchesHost(X509Certificate certificate, string host)
    {
        if (certificate is X509Certificate2 c2)
        {
            return c2.MatchesHostname(host);
        }

        using var loaded = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return loaded.MatchesHostname(host);
    }
}
