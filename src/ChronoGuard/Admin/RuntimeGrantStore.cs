using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Admin;

/// <summary>
/// Runtime grants (SPEC §9): made and revoked through the admin API, effective at once (published to
/// the engine's <see cref="RuntimeGrantTable"/>), kept across restarts in <c>grants.json</c> beside the
/// audit log, and each change a chained <c>system</c> record (<c>grant_add</c>, <c>grant_revoke</c>,
/// <c>grant_expire</c>, <c>grant_refused</c>) with the grant's agent, domains, id, the actor and the
/// reason, and in <c>policy</c> the SHA-256 of the grant's canonical text. A change is made durable in
/// the chain before the file is written and the grant takes effect, so a grant in force is always one
/// the chain knows; at start every grant of <c>grants.json</c> must match a <c>grant_add</c> record by
/// that digest, with no later revoke or expiry of its id, or it is refused and logged (an edited file
/// cannot widen or extend a grant).
/// <para>
/// Seam for <c>ask</c> (pending approvals, not built yet): an approval would call
/// <see cref="AddAsync(string, string[], DateTimeOffset, string, string)"/> with the held request's host
/// (or suffix) and agent, the approver as actor, and then release the held requests the new grant covers.
/// </para>
/// </summary>
internal sealed class RuntimeGrantStore : IDisposable
{
    public const string FileName = "grants.json";

    /// <summary>Grants in force at once; each is scanned only on a defaultAction refusal, and a list this long is already an operator's problem.</summary>
    public const int MaxGrants = 1000;

    public const int MaxDomains = 100;

    public const int MaxReasonChars = 200;

    private readonly SemaphoreSlim _changes = new(1, 1);
    private readonly AuditWriter _audit;
    private readonly PolicyEngine _engine;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _expiry;
    private List<(RuntimeGrant Grant, string Digest)> _grants = [];
    private volatile bool _disposed;

    private RuntimeGrantStore(string path, AuditWriter audit, PolicyEngine engine, TimeProvider time, ILogger logger)
    {
        FilePath = path;
        _audit = audit;
        _engine = engine;
        _time = time;
        _logger = logger;
        _expiry = time.CreateTimer(_ => _ = Task.Run(ExpireAsync), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        // The semaphore is left to the GC at dispose: a timer callback already running may still wait on it.
    }

    public string FilePath { get; }

    /// <summary>Called once a new grant is in force (chained, saved, published): the held requests it covers are released.</summary>
    public Action<RuntimeGrant>? Added { get; set; }

    /// <summary>Loads <c>grants.json</c> from the audit directory and keeps only what the chain knows (see the class summary).</summary>
    public static RuntimeGrantStore Open(string auditDirectory, AuditWriter audit, PolicyEngine engine, TimeProvider time, ILogger logger)
    {
        var store = new RuntimeGrantStore(Path.Combine(auditDirectory, FileName), audit, engine, time, logger);
        store.Restore(auditDirectory);
        return store;
    }

    /// <summary>The grants in force now (an expired one is gone from here at its expiry, before the timer tidies it away).</summary>
    public List<RuntimeGrant> List()
    {
        var now = _time.GetUtcNow();
        var list = new List<RuntimeGrant>();
        foreach (var (g, _) in Volatile.Read(ref _grants))
        {
            if (g.Expires > now)
            {
                list.Add(g);
            }
        }

        return list;
    }

    /// <summary>
    /// <c>POST /v1/grants</c>: <c>{agent, domains, for|expires, reason}</c>. Returns the grant, or the
    /// status and one line saying what is wrong with the request.
    /// </summary>
    public async Task<(RuntimeGrant? Grant, int Status, string? Error)> AddAsync(byte[] body, string actor)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return (null, 400, "the body is not JSON (expected {\"agent\", \"domains\", \"for\" or \"expires\", \"reason\"})");
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, 400, "$: must be an object {\"agent\", \"domains\", \"for\" or \"expires\", \"reason\"}");
            }

            string? agent = null, reason = null, forText = null, expiresText = null;
            var domains = new List<string>();
            foreach (var p in root.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "agent" when p.Value.ValueKind == JsonValueKind.String: agent = p.Value.GetString(); break;
                    case "reason" when p.Value.ValueKind == JsonValueKind.String: reason = p.Value.GetString(); break;
                    case "for" when p.Value.ValueKind == JsonValueKind.String: forText = p.Value.GetString(); break;
                    case "expires" when p.Value.ValueKind == JsonValueKind.String: expiresText = p.Value.GetString(); break;
                    case "domains" when p.Value.ValueKind == JsonValueKind.Array:
                        foreach (var d in p.Value.EnumerateArray())
                        {
                            if (d.ValueKind != JsonValueKind.String)
                            {
                                return (null, 400, $"$.domains[{domains.Count}]: must be a string");
                            }

                            domains.Add(d.GetString()!);
                        }

                        break;
                    case "agent" or "reason" or "for" or "expires":
                        return (null, 400, $"$.{p.Name}: must be a string");
                    case "domains":
                        return (null, 400, "$.domains: must be a list of domain names");
                    default:
                        return (null, 400, $"$.{p.Name}: unknown field (allowed: agent, domains, for, expires, reason)");
                }
            }

            var now = _time.GetUtcNow();
            DateTimeOffset expires;
            if ((forText is null) == (expiresText is null))
            {
                return (null, 400, "give exactly one of $.for (such as \"1h\") and $.expires (ISO-8601)");
            }

            if (forText is not null)
            {
                if (!AdminDuration.TryParse(forText, out var span))
                {
                    return (null, 400, $"$.for: '{forText}' is not a duration (allowed: a whole number and s, m, h or d, such as 90s, 10m, 1h, 7d)");
                }

                expires = now + span;
            }
            else if (!DateTimeOffset.TryParse(expiresText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out expires))
            {
                return (null, 400, $"$.expires: '{expiresText}' is not an ISO-8601 time");
            }
            else if (expires <= now)
            {
                return (null, 400, $"$.expires: {expires:O} is not in the future");
            }

            return await AddAsync(agent ?? string.Empty, [.. domains], expires, reason ?? string.Empty, actor).ConfigureAwait(false);
        }
    }

    /// <summary>Validates and makes a grant: chained and durable first, then written to the file, then in force.</summary>
    public async Task<(RuntimeGrant? Grant, int Status, string? Error)> AddAsync(string agent, string[] domains, DateTimeOffset expires, string reason, string actor)
    {
        if (agent.Length == 0)
        {
            return (null, 400, "$.agent: is required (an agent id of the policy file)");
        }

        if (!_engine.Current.AgentsById.ContainsKey(agent))
        {
            return (null, 400, $"$.agent: unknown agent \"{agent}\" (not in the current policy)");
        }

        if (domains.Length == 0 || domains.Length > MaxDomains)
        {
            return (null, 400, $"$.domains: must list 1 to {MaxDomains} domain names");
        }

        var normalized = new string[domains.Length];
        for (var i = 0; i < domains.Length; i++)
        {
            if (domains[i].Contains(':', StringComparison.Ordinal) || domains[i].Contains('/', StringComparison.Ordinal))
            {
                return (null, 400, $"$.domains[{i}]: '{domains[i]}': a runtime grant names hosts, not ports or address blocks");
            }

            if (DomainNames.TryNormalizePattern(domains[i], out var pattern) is { } problem)
            {
                return (null, 400, $"$.domains[{i}]: '{domains[i]}': {problem}");
            }

            if (pattern.StartsWith("*.", StringComparison.Ordinal) && (PublicSuffixes.IsPublicSuffix(pattern[2..]) || !pattern[2..].Contains('.', StringComparison.Ordinal)))
            {
                return (null, 400, $"$.domains[{i}]: '{domains[i]}': a wildcard over a public suffix would grant every site under it");
            }

            normalized[i] = pattern;
        }

        if (string.IsNullOrWhiteSpace(reason) || reason.Length > MaxReasonChars || reason.Any(char.IsControl))
        {
            return (null, 400, $"$.reason: is required: one line of at most {MaxReasonChars} characters (a ticket, an incident)");
        }

        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            var live = Live();
            if (live.Count >= MaxGrants)
            {
                return (null, 409, $"{MaxGrants} grants are in force; revoke some first");
            }

            var id = "g-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            var grant = new RuntimeGrant(id, agent, normalized, Truncate(expires), reason, actor, Truncate(_time.GetUtcNow()));
            var digest = Digest(grant);
            if (!await ChainAsync("grant_add", grant, digest, actor, reason).ConfigureAwait(false))
            {
                return (null, 503, "the audit log cannot record the grant now, so it was not made");
            }

            live.Add((grant, digest));
            if (!Save(live, out var ioProblem))
            {
                await ChainAsync("grant_revoke", grant, digest, "chronoguard", $"{FileName} could not be written: {ioProblem}").ConfigureAwait(false);
                return (null, 500, $"{FilePath}: cannot write: {ioProblem}; the grant was not made");
            }

            Publish(live);
            // In force from here: requests held for what it covers go on (SPEC §9), whoever made it.
            Added?.Invoke(grant);
            return (grant, 201, null);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary><c>DELETE /v1/grants/ID</c>: false when no grant in force has that id.</summary>
    public async Task<(bool Found, int Status, string? Error)> RevokeAsync(string id, string actor, string? reason)
    {
        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            var live = Live();
            var index = live.FindIndex(e => e.Grant.Id == id);
            if (index < 0)
            {
                return (false, 404, $"no grant in force has the id '{id}'");
            }

            var (grant, digest) = live[index];
            if (!await ChainAsync("grant_revoke", grant, digest, actor, string.IsNullOrWhiteSpace(reason) ? "revoked" : reason).ConfigureAwait(false))
            {
                return (false, 503, "the audit log cannot record the revocation now, so the grant stays");
            }

            live.RemoveAt(index);
            Publish(live);
            if (!Save(live, out var ioProblem))
            {
                // Already out of force, and the chain says so: a start would refuse it from the old file.
                return (true, 500, $"{FilePath}: cannot write: {ioProblem}; the grant is revoked (the chain records it)");
            }

            return (true, 200, null);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>The grants in force, expired ones left out (the caller holds <see cref="_changes"/>).</summary>
    private List<(RuntimeGrant Grant, string Digest)> Live()
    {
        var now = _time.GetUtcNow();
        return [.. _grants.Where(e => e.Grant.Expires > now)];
    }

    private async Task ExpireAsync()
    {
        if (_disposed)
        {
            return;
        }

        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            var expired = _grants.Where(e => e.Grant.Expires <= now).ToList();
            if (expired.Count == 0)
            {
                Reschedule(_grants);
                return;
            }

            foreach (var (grant, digest) in expired)
            {
                await ChainAsync("grant_expire", grant, digest, "chronoguard", "expired").ConfigureAwait(false);
            }

            var live = Live();
            Publish(live);
            Save(live, out _);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            AdminLog.Failed(_logger, "expire", FileName, ex.GetType().Name + ": " + ex.Message.ReplaceLineEndings(" "));
        }
        finally
        {
            _changes.Release();
        }
    }

    private void Publish(List<(RuntimeGrant Grant, string Digest)> live)
    {
        Volatile.Write(ref _grants, live);
        _engine.RuntimeGrants.Publish([.. live.Select(e => e.Grant)]);
        // Tunnels a revoked grant let through are rechecked (and closed), as after a reload.
        _engine.GrantsChanged();
        Reschedule(live);
    }

    private void Reschedule(List<(RuntimeGrant Grant, string Digest)> live)
    {
        if (live.Count == 0)
        {
            _expiry.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var due = live.Min(e => e.Grant.Expires) - _time.GetUtcNow();
        _expiry.Change(due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Appends the record and waits until it is durable; false when the writer could not commit it.</summary>
    private async Task<bool> ChainAsync(string evt, RuntimeGrant grant, string digest, string actor, string reason)
    {
        await _audit.WaitForRoomAsync().ConfigureAwait(false);
        var detail = $"by {actor} until {grant.Expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}: {reason}";
        var domains = string.Join(",", grant.Domains);
        var seq = SystemRecords.Append(_audit, evt, digest, detail, grant.Agent, domains, grant.Id);
        var durable = await _audit.WaitDurableAsync(seq).ConfigureAwait(false);
        if (durable)
        {
            var expires = grant.Expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            AdminLog.GrantChanged(_logger, grant.Id, evt["grant_".Length..] switch { "add" => "added", "revoke" => "revoked", _ => "expired" }, actor, grant.Agent, domains, expires, reason);
        }

        return durable;
    }

    /// <summary>What the chain's digest covers: every field of the grant, one per line.</summary>
    public static string Digest(RuntimeGrant g)
    {
        var text = string.Join('\n', g.Id, g.Agent, string.Join(',', g.Domains), g.Expires.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
            g.Reason, g.Actor, g.Created.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    private static DateTimeOffset Truncate(DateTimeOffset t) => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());

    private bool Save(List<(RuntimeGrant Grant, string Digest)> live, out string? problem)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WritePropertyName("grants");
            w.WriteStartArray();
            foreach (var (g, _) in live)
            {
                Write(w, g);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        try
        {
            AtomicFile.Replace(FilePath, buffer.WrittenSpan);
            problem = null;
            return true;
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            problem = IoErrors.Problem(ex, FilePath);
            return false;
        }
    }

    /// <summary>One grant as the API and the file show it.</summary>
    public static void Write(Utf8JsonWriter w, RuntimeGrant g)
    {
        w.WriteStartObject();
        w.WriteString("id", g.Id);
        w.WriteString("agent", g.Agent);
        w.WritePropertyName("domains");
        w.WriteStartArray();
        foreach (var d in g.Domains)
        {
            w.WriteStringValue(d);
        }

        w.WriteEndArray();
        w.WriteString("expires", g.Expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        w.WriteString("reason", g.Reason);
        w.WriteString("actor", g.Actor);
        w.WriteString("created", g.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        w.WriteEndObject();
    }

    /// <summary>At start: the file's grants, each kept only if the chain made it and has not ended it.</summary>
    private void Restore(string auditDirectory)
    {
        if (!File.Exists(FilePath))
        {
            return;
        }

        List<RuntimeGrant> fromFile;
        try
        {
            fromFile = ReadFile(File.ReadAllBytes(FilePath));
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException || IoErrors.IsIo(ex))
        {
            AdminLog.GrantsUnreadable(_logger, FilePath, ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException ? "not a grants file" : IoErrors.Problem(ex, FilePath));
            SystemRecords.Append(_audit, "grant_refused", null, $"{FileName} could not be read; no runtime grant restored");
            return;
        }

        if (fromFile.Count == 0)
        {
            return;
        }

        // Which grants the chain made, by digest, and which ids it ended since.
        var made = new Dictionary<string, string>(StringComparer.Ordinal);
        var ended = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in AuditReader.ReadDirectory(auditDirectory))
        {
            if (item.Entry is not { Kind: AuditKind.System } e)
            {
                continue;
            }

            switch (e.Reason)
            {
                case "grant_add": made[e.Policy] = e.Rule; break;
                case "grant_revoke" or "grant_expire" or "grant_refused": ended.Add(e.Rule); break;
            }
        }

        var now = _time.GetUtcNow();
        var kept = new List<(RuntimeGrant, string)>();
        foreach (var g in fromFile)
        {
            var digest = Digest(g);
            string? problem = !made.TryGetValue(digest, out var id) || id != g.Id ? "the audit chain has no record of this grant (the file was edited, or its record was lost)"
                : ended.Contains(g.Id) ? "the audit chain records it as revoked or expired"
                : g.Expires <= now ? null
                : !_engine.Current.AgentsById.ContainsKey(g.Agent) ? $"agent \"{g.Agent}\" is not in the current policy"
                : null;
            if (problem is not null)
            {
                AdminLog.GrantRefused(_logger, FilePath, g.Id, problem);
                SystemRecords.Append(_audit, "grant_refused", digest, $"{FileName}: {problem}", g.Agent, string.Join(",", g.Domains), g.Id);
            }
            else if (g.Expires <= now)
            {
                SystemRecords.Append(_audit, "grant_expire", digest, "expired while the sidecar was down", g.Agent, string.Join(",", g.Domains), g.Id);
            }
            else
            {
                kept.Add((g, digest));
            }
        }

        AdminLog.GrantsRestored(_logger, kept.Count, FilePath);
        Publish(kept);
        if (kept.Count != fromFile.Count)
        {
            Save(kept, out _);
        }
    }

    private static List<RuntimeGrant> ReadFile(byte[] bytes)
    {
        using var doc = JsonDocument.Parse(bytes);
        var list = new List<RuntimeGrant>();
        foreach (var e in doc.RootElement.GetProperty("grants").EnumerateArray())
        {
            list.Add(new RuntimeGrant(
                e.GetProperty("id").GetString()!,
                e.GetProperty("agent").GetString()!,
                [.. e.GetProperty("domains").EnumerateArray().Select(d => d.GetString()!)],
                DateTimeOffset.Parse(e.GetProperty("expires").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                e.GetProperty("reason").GetString()!,
                e.GetProperty("actor").GetString()!,
                DateTimeOffset.Parse(e.GetProperty("created").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)));
        }

        return list;
    }

    public void Dispose()
    {
        _disposed = true;
        _expiry.Dispose();
    }
}
