using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ChronoGuard.LoadGen;

internal enum LoadMode
{
    Forward,
    Connect,
    Tunnel,
}

internal sealed class Options
{
    public const string Usage = """
        chronoguard-loadgen: drives an HTTP or SOCKS5 proxy (or an origin directly) and measures it.

        Usage:
          chronoguard-loadgen --mode forward|connect|tunnel --target URL [options]
          chronoguard-loadgen echo-server --listen 127.0.0.1:PORT
          chronoguard-loadgen --serve-echo PORT          (same, on 127.0.0.1)

        Modes:
          forward   keep-alive plain HTTP: one socket per worker, GET in absolute-form via the proxy
                    (origin-form when direct). Target http://host:port/path.
          connect   one CONNECT tunnel per request, one GET with Connection: close inside it
                    (TLS inside the tunnel with --tls). Target http[s]://host:port/path.
                    With --keep-alive: one tunnel (and TLS session) per worker, kept, with keep-alive
                    GETs inside it one after another; a tunnel the far end closes is opened again.
          tunnel    one long-lived CONNECT tunnel per worker to an echo/discard TCP server; writes
                    --size chunks as fast as possible while reading back. Target tcp://host:port.
          connect and tunnel also run through a SOCKS5 proxy (RFC 1928 CONNECT; RFC 1929 login when
          credentials are given); forward mode needs an HTTP proxy.

        Options:
          --proxy URL            http://host:port of an HTTP proxy, or socks5://host:port (the client
                                 resolves a target name once at start and sends the address) or
                                 socks5h://host:port (the name is sent for the proxy to resolve);
                                 omit to hit the target directly.
                                 Credentials may be given as scheme://user:token@host:port.
          --socks5 HOST:PORT     the same as --proxy socks5h://HOST:PORT.
          --proxy-user U:T       Proxy-Authorization: Basic credentials (HTTP), or the SOCKS5
                                 username/password login (U and T at most 255 bytes each).
          --tls                  TLS to the origin inside the tunnel (connect mode; implied by https://).
          --insecure             accept any origin certificate.
          --ca FILE              PEM certificate(s) the origin's certificate must chain to (instead of
                                 the system store); its name is checked as always. For a TLS-inspecting
                                 proxy, its CA certificate.
          --keep-alive           connect mode: many requests per tunnel (see Modes).
          --no-connection-close  connect mode, one request per tunnel: the GET does not say
                                 Connection: close (as curl and git send it); the client closes the
                                 tunnel once the response has arrived.
          --no-tls-resume        every TLS handshake is a full one: no session resumption (tickets or
                                 IDs) from an earlier connection of this run, as a fresh process has.
          -c, --concurrency N    workers / connections (default 32).
          -d, --duration T       measured duration, e.g. 500ms, 10s, 2m (default 10s unless -n).
          -n, --requests N       stop after N measured requests (forward/connect).
          --warmup T             unmeasured warm-up before the measurement (default 1s).
          --timeout T            per-request timeout (default 10s; tunnel setup in tunnel mode).
          --size BYTES           tunnel-mode write size (default 65536; k/m suffixes allowed).
          --json FILE            write the results as JSON.
          --histogram-out FILE   write percentile,latency_us CSV for plotting.
          --label NAME           name carried into the report.
          --no-progress          no per-second line on stderr.

        A request counts once its response head arrives (any status); 4xx/5xx are also counted as
        errors (proxy_status_XXX when the proxy produced them, upstream_status_XXX otherwise).
        Transport failures are errors only. Latency is measured for completed requests only.
        Ctrl-C or SIGTERM stops early and still prints the results.
        Exit status: 0 when a run completed (whatever its errors), 1 on a fatal error, 2 on bad usage.
        """;

    public LoadMode Mode { get; private set; } = LoadMode.Forward;
    public Uri? Target { get; private set; }
    public Uri? Proxy { get; private set; }
    /// <summary>The proxy speaks SOCKS5 (socks5:// or socks5h://) rather than HTTP.</summary>
    public bool Socks => Proxy is { Scheme: "socks5" or "socks5h" };
    /// <summary>socks5h://: a target name goes to the proxy as a name; socks5:// resolves it here first.</summary>
    public bool SocksRemoteDns => Proxy is { Scheme: "socks5h" };
    public string? ProxyCredentials { get; private set; }
    public bool Tls { get; private set; }
    public bool Insecure { get; private set; }
    /// <summary>PEM file whose certificates are the only trust anchors for the origin (custom root trust).</summary>
    public string? CaFile { get; private set; }
    /// <summary>The certificates read from <see cref="CaFile"/>.</summary>
    public X509Certificate2Collection? CaCertificates { get; private set; }
    /// <summary>Connect mode: one long-lived tunnel per worker carrying keep-alive requests.</summary>
    public bool KeepAlive { get; private set; }
    /// <summary>Connect mode without --keep-alive: the one GET omits Connection: close; the client closes after it.</summary>
    public bool NoConnectionClose { get; private set; }
    /// <summary>Full TLS handshakes only (SslClientAuthenticationOptions.AllowTlsResume = false).</summary>
    public bool NoTlsResume { get; private set; }
    public int Concurrency { get; private set; } = 32;
    public TimeSpan? Duration { get; private set; }
    public long Requests { get; private set; }
    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(1);
    public TimeSpan Timeout { get; private set; } = TimeSpan.FromSeconds(10);
    public int Size { get; private set; } = 64 * 1024;
    public string? JsonPath { get; private set; }
    public string? HistogramPath { get; private set; }
    public string? Label { get; private set; }
    public bool Progress { get; private set; } = true;
    public bool Help { get; private set; }

    /// <summary>Set when the invocation asks for the echo server instead of a load run.</summary>
    public IPEndPoint? EchoListen { get; private set; }

    /// <summary>Host for DNS and SNI: punycode for names, no brackets for IPv6 literals.</summary>
    public string TargetHost => Target!.HostNameType == UriHostNameType.IPv6 ? Target.DnsSafeHost : Target.IdnHost;
    public int TargetPort => Target!.Port;

    /// <summary>host:port as it must appear in CONNECT and in a Host header (IPv6 bracketed).</summary>
    public string TargetAuthority => Target!.HostNameType == UriHostNameType.IPv6
        ? "[" + Target.DnsSafeHost + "]:" + Target.Port.ToString(CultureInfo.InvariantCulture)
        : Target.IdnHost + ":" + Target.Port.ToString(CultureInfo.InvariantCulture);

    public string TargetPathAndQuery => string.IsNullOrEmpty(Target!.PathAndQuery) ? "/" : Target.PathAndQuery;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        var modeGiven = false;
        var i = 0;
        if (args.Length > 0 && args[0] == "echo-server")
        {
            i = 1;
            o.EchoListen = new IPEndPoint(IPAddress.Loopback, 0);
        }
        for (; i < args.Length; i++)
        {
            var arg = args[i];
            string? inline = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            string Value()
            {
                if (inline is not null)
                {
                    return inline;
                }
                if (i + 1 >= args.Length)
                {
                    throw new FormatException($"{arg} needs a value");
                }
                return args[++i];
            }
            switch (arg)
            {
                case "-h" or "--help":
                    o.Help = true;
                    break;
                case "-m" or "--mode":
                    o.Mode = Value() switch
                    {
                        "forward" => LoadMode.Forward,
                        "connect" => LoadMode.Connect,
                        "tunnel" => LoadMode.Tunnel,
                        var m => throw new FormatException($"unknown mode '{m}' (forward, connect or tunnel)"),
                    };
                    modeGiven = true;
                    break;
                case "-t" or "--target":
                    o.Target = ParseUri(Value(), "--target");
                    break;
                case "-x" or "--proxy":
                    o.Proxy = ParseUri(Value(), "--proxy");
                    break;
                case "--socks5":
                    o.Proxy = ParseUri("socks5h://" + Value(), "--socks5");
                    break;
                case "--proxy-user":
                    o.ProxyCredentials = Value();
                    if (!o.ProxyCredentials.Contains(':', StringComparison.Ordinal))
                    {
                        throw new FormatException("--proxy-user must be user:token");
                    }
                    break;
                case "--tls":
                    o.Tls = true;
                    break;
                case "-k" or "--insecure":
                    o.Insecure = true;
                    break;
                case "--ca":
                    o.CaFile = Value();
                    break;
                case "--keep-alive":
                    o.KeepAlive = true;
                    break;
                case "--no-connection-close":
                    o.NoConnectionClose = true;
                    break;
                case "--no-tls-resume":
                    o.NoTlsResume = true;
                    break;
                case "-c" or "--concurrency":
                    o.Concurrency = (int)ParseCount(Value(), arg, 1, 100_000, 1000);
                    break;
                case "-d" or "--duration":
                    o.Duration = ParseTime(Value(), arg);
                    if (o.Duration <= TimeSpan.Zero)
                    {
                        throw new FormatException("--duration must be positive");
                    }
                    break;
                case "-n" or "--requests":
                    o.Requests = ParseCount(Value(), arg, 1, long.MaxValue, 1000);
                    break;
                case "--warmup":
                    o.Warmup = ParseTime(Value(), arg);
                    break;
                case "--timeout":
                    o.Timeout = ParseTime(Value(), arg);
                    if (o.Timeout <= TimeSpan.Zero)
                    {
                        throw new FormatException("--timeout must be positive");
                    }
                    break;
                case "--size":
                    o.Size = (int)ParseCount(Value(), arg, 1, 64 * 1024 * 1024, 1024);
                    break;
                case "--json":
                    o.JsonPath = Value();
                    break;
                case "--histogram-out":
                    o.HistogramPath = Value();
                    break;
                case "--label":
                    o.Label = Value();
                    break;
                case "--no-progress":
                    o.Progress = false;
                    break;
                case "--listen" when o.EchoListen is not null:
                    o.EchoListen = ParseEndPoint(Value());
                    break;
                case "--serve-echo":
                    o.EchoListen = new IPEndPoint(IPAddress.Loopback, (int)ParseCount(Value(), arg, 1, 65535, 1));
                    break;
                default:
                    throw new FormatException($"unknown option '{arg}' (see --help)");
            }
        }
        if (o.EchoListen is not null && modeGiven)
        {
            throw new FormatException("the echo server runs on its own: start it as a separate process");
        }
        if (o.Help || o.EchoListen is not null)
        {
            if (o.EchoListen is { Port: 0 })
            {
                throw new FormatException("echo-server needs --listen ADDRESS:PORT");
            }
            return o;
        }
        if (!modeGiven)
        {
            throw new FormatException("--mode is required (forward, connect or tunnel)");
        }
        o.Validate();
        return o;
    }

    private void Validate()
    {
        if (Target is null)
        {
            throw new FormatException("--target is required");
        }
        if (Mode == LoadMode.Tunnel)
        {
            if (Target.Scheme != "tcp")
            {
                throw new FormatException("tunnel mode needs --target tcp://host:port");
            }
            if (Target.Port <= 0)
            {
                throw new FormatException("tunnel mode needs an explicit port in --target");
            }
            if (Requests > 0)
            {
                throw new FormatException("-n does not apply to tunnel mode; use -d");
            }
            if (Tls)
            {
                throw new FormatException("--tls does not apply to tunnel mode");
            }
        }
        else
        {
            if (Target.Scheme == Uri.UriSchemeHttps)
            {
                Tls = true;
            }
            else if (Target.Scheme != Uri.UriSchemeHttp)
            {
                throw new FormatException($"{Mode.ToString().ToLowerInvariant()} mode needs an http:// or https:// target");
            }
            if (Tls && Mode == LoadMode.Forward)
            {
                throw new FormatException("forward mode is plain HTTP; use connect mode for TLS");
            }
        }
        if (KeepAlive && Mode != LoadMode.Connect)
        {
            throw new FormatException("--keep-alive applies to connect mode only (forward mode always keeps its connection)");
        }
        if (NoConnectionClose && (Mode != LoadMode.Connect || KeepAlive))
        {
            throw new FormatException("--no-connection-close applies to connect mode with one request per tunnel (not --keep-alive)");
        }
        if (NoTlsResume && !Tls)
        {
            throw new FormatException("--no-tls-resume needs TLS to the origin (--tls or an https:// target)");
        }
        if (CaFile is not null)
        {
            if (!Tls)
            {
                throw new FormatException("--ca needs TLS to the origin (--tls or an https:// target)");
            }
            if (Insecure)
            {
                throw new FormatException("--ca and --insecure contradict each other: choose one");
            }
            var anchors = new X509Certificate2Collection();
            try
            {
                anchors.ImportFromPemFile(CaFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new FormatException($"--ca: cannot read '{CaFile}': {ex.Message}");
            }
            if (anchors.Count == 0)
            {
                throw new FormatException($"--ca: '{CaFile}' holds no PEM certificate");
            }
            CaCertificates = anchors;
        }
        if (Proxy is not null)
        {
            if (Proxy.Scheme != Uri.UriSchemeHttp && !Socks)
            {
                throw new FormatException("--proxy must be http://, socks5:// or socks5h://host:port");
            }
            if (ProxyCredentials is null && !string.IsNullOrEmpty(Proxy.UserInfo))
            {
                ProxyCredentials = Uri.UnescapeDataString(Proxy.UserInfo);
            }
            if (Socks)
            {
                ValidateSocks();
            }
        }
        else if (ProxyCredentials is not null)
        {
            throw new FormatException("--proxy-user needs --proxy");
        }
        if (Requests == 0 && Duration is null)
        {
            Duration = TimeSpan.FromSeconds(10);
        }
    }

    private void ValidateSocks()
    {
        if (Mode == LoadMode.Forward)
        {
            throw new FormatException("forward mode needs an HTTP proxy; use connect or tunnel mode through SOCKS5");
        }
        if (Proxy!.Port <= 0)
        {
            throw new FormatException("a SOCKS5 proxy needs an explicit port (socks5://host:port)");
        }
        if (ProxyCredentials is { } credentials)
        {
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || Encoding.UTF8.GetByteCount(credentials.AsSpan(0, colon)) is 0 or > 255
                || Encoding.UTF8.GetByteCount(credentials.AsSpan(colon + 1)) > 255)
            {
                throw new FormatException("SOCKS5 credentials must be user:token with 1 to 255 bytes of user and at most 255 of token");
            }
        }
        if (Target!.HostNameType == UriHostNameType.Dns && Encoding.ASCII.GetByteCount(TargetHost) > 255)
        {
            throw new FormatException("a SOCKS5 target name is at most 255 bytes");
        }
    }

    /// <summary>The proxy without any user:token part, for output that may be shared.</summary>
    public string? ProxyDisplay => Proxy?.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped);

    public string? ProxyAuthorizationValue => ProxyCredentials is null
        ? null
        : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(ProxyCredentials));

    private static Uri ParseUri(string value, string name)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new FormatException($"{name}: '{value}' is not an absolute URL");
        }
        return uri;
    }

    private static IPEndPoint ParseEndPoint(string value)
    {
        if (IPEndPoint.TryParse(value, out var ep) && ep.Port != 0)
        {
            return ep;
        }
        var colon = value.LastIndexOf(':');
        if (colon > 0 && value[..colon] == "localhost"
            && int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port is > 0 and <= 65535)
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        throw new FormatException($"--listen: '{value}' is not ADDRESS:PORT");
    }

    internal static TimeSpan ParseTime(string value, string name)
    {
        var s = value.Trim();
        var (number, scale) = s switch
        {
            _ when s.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (s[..^2], 1.0),
            _ when s.EndsWith("us", StringComparison.OrdinalIgnoreCase) => (s[..^2], 0.001),
            _ when s.EndsWith('s') || s.EndsWith('S') => (s[..^1], 1000.0),
            _ when s.EndsWith('m') || s.EndsWith('M') => (s[..^1], 60_000.0),
            _ when s.EndsWith('h') || s.EndsWith('H') => (s[..^1], 3_600_000.0),
            _ => (s, 1000.0),
        };
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0 || double.IsInfinity(n))
        {
            throw new FormatException($"{name}: '{value}' is not a duration like 500ms, 10s or 2m");
        }
        return TimeSpan.FromMilliseconds(n * scale);
    }

    /// <param name="unit">What a k suffix multiplies by: 1000 for counts, 1024 for byte sizes, 1 for none.</param>
    internal static long ParseCount(string value, string name, long min, long max, long unit)
    {
        var s = value.Trim().Replace("_", "", StringComparison.Ordinal);
        long scale = 1;
        if (s.Length > 1 && unit > 1)
        {
            switch (char.ToLowerInvariant(s[^1]))
            {
                case 'k':
                    scale = unit;
                    s = s[..^1];
                    break;
                case 'm':
                    scale = unit * unit;
                    s = s[..^1];
                    break;
            }
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > max / scale || n * scale < min)
        {
            throw new FormatException($"{name}: '{value}' must be a whole number from {min} to {max}");
        }
        return n * scale;
    }
}
