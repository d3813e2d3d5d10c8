using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using ChronoGuard.Admin;
using ChronoGuard.Approvals;
using ChronoGuard.Audit;
using ChronoGuard.Inspection;
using ChronoGuard.Metrics;
using ChronoGuard.Net;
using Microsoft.Extensions.Configuration;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Stats;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>Starts the proxy and stats listeners, drains on stop, reloads the policy on SIGHUP.</summary>
internal sealed class SidecarService(SidecarSettings settings, IDnsResolver resolver, TimeProvider time, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    /// <summary>A CA with less than this left is warned about at start.</summary>
    private static readonly TimeSpan InspectionExpiryWarning = TimeSpan.FromDays(30);

    private readonly ILogger _logger = loggers.CreateLogger("chronoguard");
    private readonly ProxyMetrics _metrics = new(DecisionReasons.Labels);
    private ProxyServer? _proxy;
    private StatsServer? _stats;
    private PosixSignalRegistration? _sighup;
    private PolicyEngine? _policy;
    private PolicyWatcher? _watcher;
    private AuditWriter? _audit;
    private PolicyGate? _gate;
    private DnsGuard? _dns;
    private RefusalLog? _refusals;
    private AdminServer? _admin;
    private RuntimeGrantStore? _grants;

    /// <summary>Refused destinations for <c>GET /v1/denials</c>, fed as records are chained (only with <c>Admin:Listen</c>).</summary>
    private DenialTable? _denials;
    private PendingApprovals? _approvals;

    /// <summary>What the DNS guard answered, per agent (SPEC §10): a transparent front end reads it.</summary>
    public AnswerMemory AnswerMemory { get; } = new();

    /// <summary>Every address the sidecar listens on: a redirected connection to one of them is refused (SPEC §10).</summary>
    private readonly OwnEndpoints _own = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Before anything is opened: a soft limit left at 1024 would hold the proxy to ~500 connections.
        var descriptorLimit = FileDescriptors.RaiseSoftLimit();
        InspectionContext? inspection;
        try
        {
            // Before the audit log opens: a CA that cannot be used stops the start with its one line and nothing written.
            inspection = InspectionContext.Open(settings.Inspection, time);
        }
        catch (InspectionConfigException ex)
        {
            throw new StartupException(ex.Message, ex);
        }

        var auditOptions = settings.Audit;
        try
        {
            _audit = AuditWriter.Open(auditOptions, time);
            var audit = _audit;
            audit.OnRetention = (seq, prevHash) =>
            {
                // On the writer thread, which must not wait on its own ring: record it from the pool.
                var hex = Convert.ToHexStringLower(prevHash);
                SidecarLog.AuditRetention(_logger, seq, hex);
                var from = audit.LastDroppedFromSeq;
                var range = from >= 0 && from < seq ? $"dropped seq {from} to {seq - 1}" : $"dropped the segments before seq {seq}";
                ThreadPool.QueueUserWorkItem(_ => _ = SystemRecords.AppendAsync(audit, "retention", detail: $"{range}; the hash of the last dropped record is {hex} (the prevHash of seq {seq}, where the kept log starts)"));
            };
            if (settings.LogRefusals != "none")
            {
                _refusals = new RefusalLog(settings.LogRefusals == "all", loggers.CreateLogger("chronoguard.refusals"));
            }

            if (!string.IsNullOrEmpty(settings.Admin.Listen))
            {
                _denials = new DenialTable();
            }

            // Both see every record on the writer thread; each copies or counts and returns.
            audit.OnChained = (_refusals, _denials) switch
            {
                ({ } log, { } table) => (in AuditRecord r) =>
                {
                    log.Observe(r);
                    table.Observe(r);
                },
                ({ } log, null) => log.Observe,
                (null, { } table) => table.Observe,
                _ => null,
            };

            audit.OnFault = cause => SidecarLog.AuditWriterFault(_logger, cause);
            audit.OnRecovered = note => SidecarLog.AuditWriterRecovered(_logger, note);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new StartupException(AuditOpenProblem(auditOptions, ex), ex);
        }

        SystemRecords.Append(_audit, "start", detail: "chronoguard " + CommandLine.Version);
        _policy = new PolicyEngine(string.IsNullOrEmpty(settings.Policy.Path) ? null : settings.Policy.Path, settings.Proxy.MaxTunnelsPerAgent, time)
        {
            InspectionConfigured = settings.Inspection.Enabled,
            ApprovalsConfigured = !string.IsNullOrEmpty(settings.Admin.Listen),
        };
        var loaded = _policy.Reload();
        if (!loaded.Ok)
        {
            SystemRecords.Append(_audit, "policy_reject", loaded.Sha256, loaded.Error);
            throw new StartupException(loaded.Error!);
        }

        if (loaded.Policy is { } p0)
        {
            SystemRecords.Append(_audit, "policy_load", loaded.Sha256, p0.SourcePath);
        }

        if (loaded.Policy is { } first)
        {
            SidecarLog.PolicyLoaded(_logger, first.SourcePath!, loaded.Sha256, first.Agents.Length, first.Policies.Length, first.Patterns.Length);
        }

        _audit.OnCommit = _metrics.AuditCommit.Observe;
        if (_audit.Checkpoints is { } checkpoints)
        {
            checkpoints.Signed = (c, error) => SidecarLog.AuditCheckpoint(_logger, c.Seq, c.Hash, c.Time, c.KeyId, c.Signature, error ?? "appended to " + Checkpoint.FileName);
        }
        var gate = _gate = new PolicyGate(_policy, time, _audit, _metrics);
        if (_denials is not null)
        {
            _approvals = new PendingApprovals(_audit, time, loggers.CreateLogger("chronoguard.approvals"), settings.Admin.AskTimeoutMs, settings.Admin.MaxPending);
        }

        var context = new ProxyContext(settings.Proxy, resolver, time, loggers.CreateLogger("chronoguard.proxy"), gate) { Inspection = inspection, Approvals = _approvals };
        _proxy = new ProxyServer(context, Listeners(settings, _policy.Current, AnswerMemory, _own));
        var open = FileDescriptors.OpenNow();
        var allowed = FileDescriptors.ConnectionsAllowed(descriptorLimit, open);
        if (allowed < settings.Proxy.MaxConnections)
        {
            // Past it, clients are refused 503 max_connections while descriptors remain to say so.
            _proxy.AdmissionLimit = allowed;
        }

        _stats = new StatsServer(loggers.CreateLogger("chronoguard.stats"), time);
        _stats.Map("/healthz", static body =>
        {
            body.Write("ok\n"u8);
            return (200, "text/plain; charset=utf-8");
        });
        _stats.Map("/readyz", body =>
        {
            var ready = _proxy.IsListening && _audit.Healthy;
            body.Write(!_proxy.IsListening ? "not ready: proxy not listening\n"u8 : !_audit.Healthy ? "not ready: audit writer failed\n"u8 : "ready\n"u8);
            return (ready ? 200 : 503, "text/plain; charset=utf-8");
        });
        var endpoints = new StatsEndpoints(_metrics, _policy, _proxy, _audit, CommandLine.Version);
        _stats.Map("/metrics", endpoints.RenderMetrics);
        _stats.Map("/stats", endpoints.RenderStats);
        _stats.Map("/audit/head", body =>
        {
            var (seq, hash) = _audit.Head;
            var checkpoint = _audit.Checkpoints?.Latest is { } signed ? ",\"checkpoint\":" + signed.ToJson() : string.Empty;
            body.Write(System.Text.Encoding.ASCII.GetBytes($"{{\"seq\":{seq},\"hash\":\"{Convert.ToHexStringLower(hash)}\"{checkpoint}}}\n"));
            return (200, "application/json");
        });

        for (var i = 0; i < _proxy.Listeners.Count; i++)
        {
            var listener = _proxy.Listeners[i];
            var index = i;
            Listen(() => _proxy.Open(index), listener.Listen, listener.Setting);
            _own.Add(_proxy.LocalEndPoints[index]);
        }

        StartDns(gate);
        Listen(() => _stats.Start(settings.Stats.Listen), settings.Stats.Listen, "Stats:Listen");
        _own.Add(_stats.LocalEndPoint);
        StartAdmin();
        // Accepting begins once every listener is known, so no redirected connection can reach one unrefused.
        _proxy.Start();
        if (allowed < settings.Proxy.MaxConnections)
        {
            // Said once, and only once the sidecar runs: a start that fails says its one line and nothing else.
            ProxyLog.DescriptorLimit(_logger, descriptorLimit, allowed, FileDescriptors.PerConnection, open, FileDescriptors.Reserve, settings.Proxy.MaxConnections);
        }

        if (string.IsNullOrEmpty(settings.Policy.Path))
        {
            SidecarLog.ObserveMode(_logger);
        }
        else if (_policy.Current.IsObserve)
        {
            SidecarLog.ObserveModeByFile(_logger, settings.Policy.Path);
        }

        if (_policy.Path is { } path && settings.Policy.Watch)
        {
            _watcher = new PolicyWatcher(path, time, () => _ = ReloadPolicy("file change"));
        }

        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            // SIGHUP is reserved for policy reload; never let it terminate the process.
            context.Cancel = true;
            SidecarLog.Sighup(_logger);
            ThreadPool.QueueUserWorkItem(_ => _ = ReloadPolicy("SIGHUP"));
        });
        var proxyEndpoint = _proxy.LocalEndPoint!.ToString();
        var statsEndpoint = _stats.LocalEndPoint!.ToString();
        var auditDirectory = Path.GetFullPath(settings.Audit.Directory);
        SidecarLog.Started(_logger, CommandLine.Version, proxyEndpoint, statsEndpoint, auditDirectory);
        if (inspection is not null)
        {
            var ca = inspection.Leaves.Authority;
            var notAfter = ca.Certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
            var scope = ca.PermittedDomains.Count == 0 ? "may sign for any name" : "may sign only within " + string.Join(", ", ca.PermittedDomains);
            var trust = inspection.Trust.Source is { } trustFile ? "the roots in " + trustFile : "the system trust store";
            var fingerprint = Convert.ToHexStringLower(ca.Certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
            var left = ca.Certificate.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime;
            if (left < InspectionExpiryWarning)
            {
                SidecarLog.InspectionCaExpiring(_logger, settings.Inspection.CaCertFile, notAfter, (int)Math.Ceiling(left.TotalDays));
            }

            SidecarLog.InspectionOn(_logger, ca.Certificate.Subject, fingerprint, notAfter, scope, inspection.Leaves.Capacity, trust);
        }

        var transparentSaid = false;
        for (var i = 1; i < _proxy.Listeners.Count; i++)
        {
            var listener = _proxy.Listeners[i];
            var (protocol, agent) = listener.Factory switch
            {
                SocksConnectionFactory socks => ("SOCKS5", socks.ListenerAgent),
                HttpConnectionFactory http => ("HTTP proxy", http.ListenerAgent),
                TransparentConnectionFactory transparent => ("transparent capture", transparent.Agent),
                _ => ("proxy", null),
            };
            var endpoint = _proxy.LocalEndPoints[i]!.ToString();
            var identity = agent is null ? "agents log in" : "every client is agent " + agent;
            SidecarLog.ListenerStarted(_logger, listener.Setting, endpoint, protocol, identity);
            if (listener.Factory is TransparentConnectionFactory && !transparentSaid && _logger.IsEnabled(LogLevel.Information))
            {
                transparentSaid = true;
                var uid = ProcessUser.EffectiveUid();
                var excluded = string.Join(", ", settings.Transparent.ExcludedCidrs);
                SidecarLog.TransparentRules(_logger, uid, excluded);
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>The admin API (SPEC §9), when Admin:Listen is set: its own listener, never the stats one.</summary>
    private void StartAdmin()
    {
        if (_denials is null)
        {
            return;
        }

        var adminLogger = loggers.CreateLogger("chronoguard.admin");
        try
        {
            _grants = RuntimeGrantStore.Open(settings.Audit.Directory, _audit!, _policy!, time, adminLogger);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            throw new StartupException($"Audit:Directory {settings.Audit.Directory}: cannot read {RuntimeGrantStore.FileName}: {IoErrors.Problem(ex, null)}", ex);
        }

        var tokens = new AdminTokens(settings.Admin.TokenSha256);
        _admin = new AdminServer(tokens, adminLogger, time);
        // Every grant that comes into force releases the held requests it covers, whichever route made it.
        _grants.Added = grant => _approvals!.ReleaseCovered(grant);
        AdminApi.Map(_admin, ReloadPolicy, _policy!, _denials, _grants, _approvals!, _audit!, time);
        Listen(() => _admin.Start(settings.Admin.Listen), settings.Admin.Listen, "Admin:Listen");
        _own.Add(_admin.LocalEndPoint);
        var endpoint = _admin.LocalEndPoint!.ToString();
        var identity = tokens.Count + " bearer token(s)";
        SidecarLog.ListenerStarted(_logger, "Admin:Listen", endpoint, "admin API", identity);
    }

    private PolicyLoadOutcome ReloadPolicy(string trigger)
    {
        var outcome = _policy!.Reload();
        _metrics.PolicyReload(outcome.Ok);
        SystemRecords.Append(_audit!, outcome.Ok ? "policy_load" : "policy_reject", outcome.Sha256, outcome.Ok ? outcome.Policy?.SourcePath : outcome.Error);
        if (outcome.Ok && _approvals is { } approvals)
        {
            // What the new policy decides for a held destination (allowed, blocked) settles it now.
            var policy = _policy.Current;
            var now = time.GetUtcNow();
            approvals.Reconsider((agent, host, port) => policy.AgentsById.TryGetValue(agent, out var plan) && policy.WouldAsk(plan, Encoding.ASCII.GetBytes(host), port, now));
        }

        if (outcome.Ok && outcome.Policy is { } p)
        {
            SidecarLog.PolicyReloaded(_logger, trigger, p.SourcePath!, outcome.Sha256, p.Agents.Length, p.Policies.Length, p.Patterns.Length);
        }
        else if (!outcome.Ok)
        {
            SidecarLog.PolicyRejected(_logger, trigger, outcome.Error!, outcome.Sha256);
        }

        return outcome;
    }

    /// <summary>
    /// One line for an audit log that would not open. Damage and a second writer already say where and
    /// what; a runtime I/O failure is put in our words, naming the setting and the file it was about.
    /// </summary>
    private static string AuditOpenProblem(AuditOptions options, Exception ex)
    {
        var dir = options.Directory;
        if (IoErrors.IsOwn(ex))
        {
            foreach (var (key, file) in new[] { ("Audit:HmacKeyFile", options.HmacKeyFile), ("Audit:SigningKeyFile", options.SigningKeyFile) })
            {
                if (!string.IsNullOrEmpty(file) && ex.Message.StartsWith(file + ":", StringComparison.Ordinal))
                {
                    return $"{key} {ex.Message.ReplaceLineEndings(" ")}";
                }
            }

            return ex.Message.StartsWith(dir, StringComparison.Ordinal) || ex.Message.StartsWith("Audit:", StringComparison.Ordinal)
                ? ex.Message.ReplaceLineEndings(" ")
                : $"Audit:Directory {dir}: cannot open the audit log: {ex.Message.ReplaceLineEndings(" ")}";
        }

        // The runtime's exception seldom names its file: the key files are read before the log is opened,
        // so try them again to find the one that failed.
        foreach (var (key, file) in new[] { ("Audit:HmacKeyFile", options.HmacKeyFile), ("Audit:SigningKeyFile", options.SigningKeyFile) })
        {
            if (string.IsNullOrEmpty(file))
            {
                continue;
            }

            try
            {
                using var probe = File.OpenRead(file);
            }
            catch (Exception probeError) when (IoErrors.IsIo(probeError))
            {
                return $"{key} {file}: cannot read the key file: {IoErrors.Problem(probeError, file)}";
            }
        }

        return Directory.Exists(dir)
            ? $"Audit:Directory {dir}: cannot open the audit log: {IoErrors.Problem(ex, null)}"
            : $"Audit:Directory {dir}: cannot create the directory: {IoErrors.CreateDirectoryProblem(dir, ex)}";
    }

    /// <summary>
    /// Every listener and its protocol: the proxy port, then the agent-bound ones (SPEC §8), whose agent
    /// must be in the policy at start (a reload that drops it makes the listener refuse, 407).
    /// </summary>
    private static List<ProxyListener> Listeners(SidecarSettings settings, CompiledPolicy policy, AnswerMemory answers, OwnEndpoints own)
    {
        var listeners = new List<ProxyListener> { new(settings.Proxy.Listen, "Proxy:Listen", new HttpConnectionFactory()) };
        for (var i = 0; i < settings.Proxy.Listeners.Count; i++)
        {
            var bound = settings.Proxy.Listeners[i];
            CheckBoundAgent(policy, bound.Agent, $"Proxy:Listeners:{i}:Agent");
            listeners.Add(new ProxyListener(bound.Listen, $"Proxy:Listeners:{i}:Listen", new HttpConnectionFactory(bound.Agent)));
        }

        if (!string.IsNullOrEmpty(settings.Socks.Listen))
        {
            listeners.Add(new ProxyListener(settings.Socks.Listen, "Socks:Listen", new SocksConnectionFactory()));
        }

        for (var i = 0; i < settings.Socks.Listeners.Count; i++)
        {
            var bound = settings.Socks.Listeners[i];
            CheckBoundAgent(policy, bound.Agent, $"Socks:Listeners:{i}:Agent");
            listeners.Add(new ProxyListener(bound.Listen, $"Socks:Listeners:{i}:Listen", new SocksConnectionFactory(bound.Agent)));
        }

        var transparent = settings.Transparent;
        foreach (var (listen, key) in new[] { (transparent.Listen, "Transparent:Listen"), (transparent.Listen6, "Transparent:Listen6") })
        {
            if (!string.IsNullOrEmpty(listen))
            {
                CheckBoundAgent(policy, transparent.Agent, "Transparent:Agent");
                listeners.Add(new ProxyListener(listen, key, new TransparentConnectionFactory(transparent.Agent, answers, own, transparent.FirstBytesMs)));
            }
        }

        for (var i = 0; i < transparent.Listeners.Count; i++)
        {
            var bound = transparent.Listeners[i];
            CheckBoundAgent(policy, bound.Agent, $"Transparent:Listeners:{i}:Agent");
            listeners.Add(new ProxyListener(bound.Listen, $"Transparent:Listeners:{i}:Listen", new TransparentConnectionFactory(bound.Agent, answers, own, transparent.FirstBytesMs)));
        }

        return listeners;
    }

    /// <summary>The DNS guard (SPEC §10), when Dns:Listen is set: its agent must be in the policy, its upstream known.</summary>
    private void StartDns(PolicyGate gate)
    {
        var options = settings.Dns;
        if (string.IsNullOrEmpty(options.Listen))
        {
            return;
        }

        var (agent, agentKey) = string.IsNullOrEmpty(options.Agent) ? (settings.Transparent.Agent, "Transparent:Agent") : (options.Agent, "Dns:Agent");
        CheckBoundAgent(_policy!.Current, agent, agentKey);
        var upstream = string.IsNullOrEmpty(options.Upstream)
            ? ResolvConf.FirstNameserver(ResolvConf.DefaultPath) ?? throw new StartupException($"Dns:Upstream is empty and {ResolvConf.DefaultPath} names no nameserver: set Dns:Upstream to HOST:PORT")
            : Endpoints.Parse(options.Upstream, "Dns:Upstream");
        _dns = new DnsGuard(options, agent, upstream, gate, AnswerMemory, time, loggers.CreateLogger("chronoguard.dns"));
        Listen(() => _dns.Start(Endpoints.Parse(options.Listen, "Dns:Listen")), options.Listen, "Dns:Listen");
        _own.Add(_dns.LocalEndpoint);
    }

    private static void CheckBoundAgent(CompiledPolicy policy, string agent, string key)
    {
        if (policy.Anonymous is null && !policy.AgentsById.ContainsKey(agent))
        {
            throw new StartupException($"{key}: agent '{agent}' is not in the policy file {policy.SourcePath}");
        }
    }

    private static void Listen(Action start, string endpoint, string key)
    {
        try
        {
            start();
        }
        catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            // Another process (often a second sidecar) holds it; sharing would split traffic and probes.
            throw new StartupException($"{endpoint} is in use", ex);
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            var why = ex.SocketErrorCode switch
            {
                System.Net.Sockets.SocketError.AddressNotAvailable => "the address is not one of this machine's",
                System.Net.Sockets.SocketError.AccessDenied => "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
                System.Net.Sockets.SocketError.AddressFamilyNotSupported => "this machine has no such address family (IPv6 disabled?)",
                System.Net.Sockets.SocketError.TooManyOpenSockets => "no file descriptors left",
                var code => $"socket error {code}",
            };
            throw new StartupException($"{key}: cannot listen on {endpoint}: {why}", ex);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        SidecarLog.Stopping(_logger);
        _sighup?.Dispose();
        _watcher?.Dispose();
        if (_proxy is not null)
        {
            await _proxy.DrainAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (_dns is not null)
        {
            await _dns.DisposeAsync().ConfigureAwait(false);
        }

        if (_stats is not null)
        {
            await _stats.DisposeAsync().ConfigureAwait(false);
        }

        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }

        _grants?.Dispose();
        if (_audit is not null)
        {
            // Refusals counted in the last second(s) are recorded before the chain says it stopped.
            _gate?.FlushSuppressed();
            SystemRecords.Append(_audit, "stop");
            _audit.Dispose();
            StopFailure = _audit.StopLoss;
            _audit = null;
        }

        // After the writer: every record it chained has been handed over.
        _refusals?.Dispose();

        if (StopFailure is null)
        {
            SidecarLog.Stopped(_logger);
        }
    }

    /// <summary>One line when the stop could not commit what the audit writer had (the run then exits non-zero).</summary>
    public string? StopFailure { get; private set; }

    public async ValueTask DisposeAsync()
    {
        _sighup?.Dispose();
        _watcher?.Dispose();
        _audit?.Dispose();
        _refusals?.Dispose();
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync().ConfigureAwait(false);
        }

        if (_stats is not null)
        {
            await _stats.DisposeAsync().ConfigureAwait(false);
        }

        if (_dns is not null)
        {
            await _dns.DisposeAsync().ConfigureAwait(false);
        }

        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }

        _grants?.Dispose();
    }
}
