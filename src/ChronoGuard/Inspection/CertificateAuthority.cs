using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Policy;

namespace ChronoGuard.Inspection;

/// <summary>
/// The CA that signs the leaves an inspected tunnel shows its client (SPEC §7): an ECDSA P-256 key and
/// its certificate, optionally with X.509 name constraints so a leaked key can only mint for the
/// permitted domains.
/// </summary>
internal sealed class CertificateAuthority : IDisposable
{
    public const string CertificateFileName = "ca.crt";
    public const string KeyFileName = "ca.key";

    /// <summary>How long a leaf is valid; a cached leaf is minted again before it runs out (see <see cref="RenewBefore"/>).</summary>
    public static readonly TimeSpan LeafLifetime = TimeSpan.FromDays(7);

    /// <summary>A cached leaf with less than this left is replaced, so no handshake ever shows one about to expire.</summary>
    public static readonly TimeSpan RenewBefore = TimeSpan.FromDays(1);

    /// <summary>Clients whose clocks run a little behind still accept a leaf minted just now.</summary>
    private static readonly TimeSpan Backdate = TimeSpan.FromHours(1);

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", null);
    private const string NameConstraintsOid = "2.5.29.30";

    private readonly ECDsa _key;
    private readonly X509SignatureGenerator _signer;
    private readonly X509AuthorityKeyIdentifierExtension _authorityKeyId;

    private CertificateAuthority(X509Certificate2 certificate, ECDsa key, IReadOnlyList<string> permitted)
    {
        Certificate = certificate;
        _key = key;
        _signer = X509SignatureGenerator.CreateForECDsa(key);
        _authorityKeyId = X509AuthorityKeyIdentifierExtension.CreateFromCertificate(certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false);
        PermittedDomains = permitted;
    }

    /// <summary>The CA certificate (public part only): what clients trust and what each leaf's chain ends with.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The permitted DNS subtrees of the name constraints (<c>example.com</c>, or <c>.example.com</c> for subdomains only); empty when unconstrained.</summary>
    public IReadOnlyList<string> PermittedDomains { get; }

    /// <summary>
    /// Whether a leaf for <paramref name="host"/> would satisfy the name constraints (RFC 5280
    /// §4.2.1.10 dNSName: <c>example.com</c> permits it and every name under it, <c>.example.com</c>
    /// only the names under it). A leaf outside them is one every client refuses: it is not minted,
    /// and the tunnel is refused instead of failing in the client's handshake. An IP literal has no
    /// dNSName, so a constrained CA permits none.
    /// </summary>
    public bool Permits(string host)
    {
        if (PermittedDomains.Count == 0)
        {
            return true;
        }

        var name = host.AsSpan().TrimEnd('.');
        foreach (var subtree in PermittedDomains)
        {
            if (subtree.StartsWith('.')
                ? name.EndsWith(subtree, StringComparison.OrdinalIgnoreCase) && name.Length > subtree.Length
                : name.Equals(subtree, StringComparison.OrdinalIgnoreCase) || (name.Length > subtree.Length && name.EndsWith(subtree, StringComparison.OrdinalIgnoreCase) && name[^(subtree.Length + 1)] == '.'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Loads a PEM certificate and its PEM ECDSA P-256 private key; every problem is one line naming the file.</summary>
    /// <param name="time">The clock that judges the certificate's validity (null: the system clock).</param>
    public static CertificateAuthority Load(string certFile, string keyFile, TimeProvider? time = null)
    {
        var certPem = ReadText(certFile, isKey: false);
        var keyPem = ReadText(keyFile, isKey: true);
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certPem);
        }
        catch (CryptographicException)
        {
            throw new InspectionConfigException($"{certFile}: not a PEM certificate (chronoguard ca init makes one)");
        }

        ECDsa? key = null;
        try
        {
            if (certificate.Extensions[ExtensionOid.BasicConstraints] is not X509BasicConstraintsExtension { CertificateAuthority: true })
            {
                throw new InspectionConfigException($"{certFile}: not a CA certificate (its basic constraints do not allow signing certificates)");
            }

            var now = (time ?? TimeProvider.System).GetUtcNow();
            if (now < certificate.NotBefore.ToUniversalTime())
            {
                throw new InspectionConfigException($"{certFile}: not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ}");
            }

            if (now >= certificate.NotAfter.ToUniversalTime())
            {
                throw new InspectionConfigException($"{certFile}: expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ} (chronoguard ca init makes a new one)");
            }

            key = ImportKey(keyFile, keyPem);
            using var certKey = certificate.GetECDsaPublicKey();
            if (certKey is null || !certKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
            {
                throw new InspectionConfigException($"{keyFile}: not the private key of the certificate in {certFile}") { IsKeyFile = true };
            }

            var permitted = ReadPermitted(certificate, certFile);
            return new CertificateAuthority(certificate, key, permitted);
        }
        catch
        {
            key?.Dispose();
            certificate.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A new CA valid for <paramref name="days"/> days from now. Each permitted domain (<c>example.com</c>
    /// for it and its subdomains, <c>*.example.com</c> for subdomains only) becomes a permitted DNS subtree;
    /// with any, every IP address is excluded, so the CA can mint for nothing else.
    /// </summary>
    /// <exception cref="InspectionConfigException">A domain is not a DNS name; the message names it.</exception>
    public static CertificateAuthority Create(IReadOnlyList<string> permittedDomains, int days, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(days, 1);
        var permitted = new List<string>(permittedDomains.Count);
        foreach (var raw in permittedDomains)
        {
            var s = raw.Trim();
            if (IPAddress.TryParse(s.Trim('[', ']'), out _) || DomainNames.TryNormalizePattern(s, out var pattern) is { } problem)
            {
                throw new InspectionConfigException($"'{raw}' is not a DNS name or *.suffix");
            }

            var subtree = pattern.StartsWith("*.", StringComparison.Ordinal) ? pattern[1..] : pattern;
            if (!permitted.Contains(subtree))
            {
                permitted.Add(subtree);
            }
        }

        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            var request = new CertificateRequest($"CN=ChronoGuard inspection CA {id}, O=ChronoGuard", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
            if (permitted.Count > 0)
            {
                request.CertificateExtensions.Add(new X509Extension(NameConstraintsOid, EncodeNameConstraints(permitted), critical: true));
            }

            var now = time.GetUtcNow();
            using var signed = request.CreateSelfSigned(now - Backdate, now.AddDays(days));
            // The public part alone: the key stays in this object, never inside a certificate handed to a handshake.
            var certificate = X509CertificateLoader.LoadCertificate(signed.RawData);
            return new CertificateAuthority(certificate, key, permitted);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <c>ca.crt</c> (mode 0644) and <c>ca.key</c> (mode 0600, never readable by others even for a
    /// moment) into <paramref name="directory"/>, creating it; never replaces an existing file.
    /// </summary>
    /// <exception cref="InspectionConfigException">One line naming the file that could not be written.</exception>
    public void Save(string directory)
    {
        var certPath = Path.Combine(directory, CertificateFileName);
        var keyPath = Path.Combine(directory, KeyFileName);
        var current = directory;
        try
        {
            Directory.CreateDirectory(directory);
            foreach (var existing in (string[])[keyPath, certPath])
            {
                if (File.Exists(existing))
                {
                    throw new InspectionConfigException($"{existing}: already exists; ca init never replaces a CA");
                }
            }

            current = keyPath;
            Write(keyPath, _key.ExportPkcs8PrivateKeyPem() + "\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
            current = certPath;
            Write(certPath, Certificate.ExportCertificatePem() + "\n", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new InspectionConfigException(current == directory ? $"{directory}: cannot create the directory: {IoErrors.CreateDirectoryProblem(directory, ex)}" : IoErrors.Line(current, ex), ex);
        }
    }

    /// <summary>A leaf for <paramref name="host"/> (a DNS name, or an IP literal with or without brackets), with its private key.</summary>
    /// <param name="key">The leaf's ECDSA P-256 key (see <see cref="LeafCertificates"/> for why one key serves every leaf).</param>
    /// <exception cref="InspectionConfigException">The CA has expired: it can sign nothing a client would accept.</exception>
    public X509Certificate2 Issue(string host, DateTimeOffset now, ECDsa key)
    {
        if (now >= Certificate.NotAfter.ToUniversalTime())
        {
            throw new InspectionConfigException($"the inspection CA {Certificate.Subject} expired on {Certificate.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ} (chronoguard ca init makes a new one)");
        }

        // "[::1]" as CONNECT writes it, "Api.Example.com." as a client may: the SAN is the plain lowercase name.
        var name = (host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host.TrimEnd('.')).ToLowerInvariant();
        var san = new SubjectAlternativeNameBuilder();
        var isIp = IPAddress.TryParse(name, out var ip);
        if (isIp)
        {
            san.AddIpAddress(ip!);
        }
        else
        {
            san.AddDnsName(name);
        }

        // X.520 caps a common name at 64 characters; a longer host has an empty subject and a critical SAN (RFC 5280 §4.2.1.6).
        var subjectBuilder = new X500DistinguishedNameBuilder();
        if (name.Length <= 64)
        {
            subjectBuilder.AddCommonName(name);
        }

        var subject = subjectBuilder.Build();
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth], critical: false));
        request.CertificateExtensions.Add(san.Build(critical: name.Length > 64));
        request.CertificateExtensions.Add(_authorityKeyId);
        var notBefore = Max(now - Backdate, Certificate.NotBefore.ToUniversalTime());
        var notAfter = Min(now + LeafLifetime, Certificate.NotAfter.ToUniversalTime());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        serial[0] |= 0x01; // and no leading zero byte to be stripped
        using var publicOnly = request.Create(Certificate.SubjectName, _signer, notBefore, notAfter, serial);
        return publicOnly.CopyWithPrivateKey(key);
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static void Write(string path, string text, UnixFileMode mode)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        using (var w = new StreamWriter(new FileStream(path, options)))
        {
            w.Write(text);
        }

        if (!OperatingSystem.IsWindows())
        {
            // The umask may have taken bits away from the certificate; its mode is what the docs promise.
            File.SetUnixFileMode(path, mode);
        }
    }

    private static string ReadText(string file, bool isKey)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new InspectionConfigException(IoErrors.Line(file, ex), ex) { IsKeyFile = isKey };
        }
    }

    private static ECDsa ImportKey(string keyFile, string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            var parameters = key.ExportParameters(includePrivateParameters: true);
            if (key.KeySize != 256 || parameters.Curve.Oid.Value != "1.2.840.10045.3.1.7")
            {
                throw new InspectionConfigException($"{keyFile}: not an ECDSA P-256 key (chronoguard ca init makes one)") { IsKeyFile = true };
            }

            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new InspectionConfigException($"{keyFile}: not an unencrypted PEM ECDSA P-256 private key (chronoguard ca init makes one)") { IsKeyFile = true };
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// NameConstraints (RFC 5280 §4.2.1.10, implicit tags): permitted dNSName subtrees, and excluded
    /// iPAddress subtrees 0.0.0.0/0 and ::/0, since a constraint on one name form leaves the others free.
    /// </summary>
    internal static byte[] EncodeNameConstraints(IReadOnlyList<string> permitted)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                foreach (var domain in permitted)
                {
                    using (writer.PushSequence())
                    {
                        writer.WriteCharacterString(UniversalTagNumber.IA5String, domain, new Asn1Tag(TagClass.ContextSpecific, 2));
                    }
                }
            }

            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 1, isConstructed: true)))
            {
                foreach (var length in (int[])[8, 32])
                {
                    using (writer.PushSequence())
                    {
                        // Address and mask, all zero: every address of the family.
                        writer.WriteOctetString(new byte[length], new Asn1Tag(TagClass.ContextSpecific, 7));
                    }
                }
            }
        }

        return writer.Encode();
    }

    /// <summary>The permitted dNSName subtrees of <paramref name="certificate"/>'s name constraints (empty when it has none).</summary>
    private static string[] ReadPermitted(X509Certificate2 certificate, string certFile)
    {
        var extension = certificate.Extensions[NameConstraintsOid];
        if (extension is null)
        {
            return [];
        }

        try
        {
            var permitted = new List<string>();
            var reader = new AsnReader(extension.RawData, AsnEncodingRules.DER);
            var constraints = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var permittedTag = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
            if (constraints.HasData && constraints.PeekTag() == permittedTag)
            {
                var subtrees = constraints.ReadSequence(permittedTag);
                while (subtrees.HasData)
                {
                    var subtree = subtrees.ReadSequence();
                    var dnsTag = new Asn1Tag(TagClass.ContextSpecific, 2);
                    if (subtree.PeekTag() == dnsTag)
                    {
                        permitted.Add(subtree.ReadCharacterString(UniversalTagNumber.IA5String, dnsTag).ToLowerInvariant());
                    }
                }
            }

            return [.. permitted];
        }
        catch (AsnContentException)
        {
            throw new InspectionConfigException($"{certFile}: its name constraints extension is malformed");
        }
    }

    private static class ExtensionOid
    {
        public const string BasicConstraints = "2.5.29.19";
    }
}
