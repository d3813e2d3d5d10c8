using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Metrics;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;

namespace ChronoGuard.Stats;

/// <summary>
/// Renders <c>/metrics</c> (Prometheus text 0.0.4) and <c>/stats</c> (JSON) from the live objects.
/// Scrapes are rare, so rendering may allocate; label sets stay bounded: agents are the policy's,
/// domains are the top <see cref="TopDomains"/> of the Count-Min sketch.
/// </summary>
internal sealed class StatsEndpoints(ProxyMetrics metrics, PolicyEngine policy, ProxyServer? proxy, AuditWriter? audit, string version)
{
    public const int TopDomains = 20;

    private readonly long _started = Stopwatch.GetTimestamp();

    private (string Id, AgentRuntime? Runtime)[] Agents()
    {
        var agents = policy.Current.Agents;
        var list = new (string, AgentRuntime?)[agents.Length];
        for (var i = 0; i < agents.Length; i++)
        {
            list[i] = (agents[i].Id, agents[i].Runtime);
        }

        return list;
    }

    public (int Status, string ContentType) RenderMetrics(IBufferWriter<byte> body)
    {
        var w = new PrometheusWriter(body);
        var agents = Agents();

        w.Family("chronoguard_decisions_total", "counter", "Decisions by agent, outcome and reason (agent \"\" is requests refused before an agent was known; reason is one of a fixed set, \"other\" for the rest). A series appears with its first decision.");
        DecisionSamples(w, string.Empty, metrics.Unauthenticated);
        foreach (var (id, runtime) in agents)
        {
            DecisionSamples(w, id, metrics.ForAgent(runtime!.Index));
        }

        w.Family("chronoguard_connections_active", "gauge", "Client connections open now (tunnels and keep-alive connections).");
        w.Sample("chronoguard_connections_active").Value(proxy?.ActiveConnections ?? 0);
        w.Family("chronoguard_connections_accepted_total", "counter", "Client connections accepted since start.");
        w.Sample("chronoguard_connections_accepted_total").Value(proxy?.AcceptedTotal ?? 0);

        if (proxy?.Context.Approvals is { } approvals)
        {
            // Only with the admin API on: without it nothing can be held, and a constant 0 would say otherwise.
            w.Family("chronoguard_pending_approvals", "gauge", "Approvals open now: destinations an agent asked for under ask, waiting for chronoguard approve or deny.");
            w.Sample("chronoguard_pending_approvals").Value(approvals.Count);
        }

        w.Family("chronoguard_bytes_total", "counter", "Payload bytes relayed, counted when a connection or tunnel closes (up: client to upstream).");
        w.Sample("chronoguard_bytes_total").Label("direction", "up").Value(metrics.BytesUp);
        w.Sample("chronoguard_bytes_total").Label("direction", "down").Value(metrics.BytesDown);

        w.Histogram(metrics.DecisionDuration);
        w.Histogram(metrics.UpstreamConnect);

        w.Family("chronoguard_audit_records_total", "counter", "Audit records chained and committed.");
        w.Sample("chronoguard_audit_records_total").Value(audit?.RecordsTotal ?? 0);
        w.Family("chronoguard_audit_queue_depth", "gauge", "Audit records appended and not yet taken by the writer.");
        w.Sample("chronoguard_audit_queue_depth").Value(audit?.QueueDepth ?? 0);
        w.Family("chronoguard_audit_backpressure_total", "counter", "Appends that found the audit queue full and waited (never dropped).");
        w.Sample("chronoguard_audit_backpressure_total").Value(audit?.BackPressureTotal ?? 0);
        w.Family("chronoguard_audit_writer_faulted", "gauge", "1 while the audit writer cannot make records durable (it retries by itself).");
        w.Sample("chronoguard_audit_writer_faulted").Value(audit?.Faulted == true ? 1 : 0);
        w.Family("chronoguard_audit_writer_faults_total", "counter", "Audit writer fault episodes (write or commit errors, commits past Audit:CommitTimeoutMs, unexpected exceptions in the writer).");
        w.Sample("chronoguard_audit_writer_faults_total").Value(audit?.FaultsTotal ?? 0);
        w.Family("chronoguard_audit_unrecorded_total", "counter", "Records that could not be queued while the audit writer was faulted (written into the chain as a count).");
        w.Sample("chronoguard_audit_unrecorded_total").Value(audit?.UnrecordedTotal ?? 0);
        w.Family("chronoguard_audit_unauthenticated_suppressed_total", "counter", "Unauthenticated refusals past Audit:UnauthenticatedPerSecond from one source, counted into one system record per source and second instead of one record each.");
        w.Sample("chronoguard_audit_unauthenticated_suppressed_total").Value(metrics.UnauthenticatedSuppressed);
        w.Family("chronoguard_audit_retention_dropped_bytes_total", "counter", "Log bytes retention dropped (whole oldest segments, past Audit:MaxBytes or Audit:RetainSegments).");
        w.Sample("chronoguard_audit_retention_dropped_bytes_total").Value(audit?.RetentionDroppedBytes ?? 0);
        w.Family("chronoguard_audit_retention_dropped_records_total", "counter", "Audit records retention dropped; each drop is named in a chained system record (reason=retention).");
        w.Sample("chronoguard_audit_retention_dropped_records_total").Value(audit?.RetentionDroppedRecords ?? 0);
        w.Family("chronoguard_audit_head_seq", "gauge", "Seq of the last durably committed audit record (-1 for an empty log): an outside anchor for the chain.");
        w.Sample("chronoguard_audit_head_seq").Value(audit?.Head.Seq ?? -1);
        w.Histogram(metrics.AuditCommit);

        var minute = policy.Time.GetUtcNow().UtcTicks / TimeSpan.TicksPerMinute;
        w.Family("chronoguard_distinct_domains", "gauge", "Distinct domains each agent has requested since start (HyperLogLog, 2^14 registers, standard error 0.81%).");
        w.Sample("chronoguard_distinct_domains").Label("agent", string.Empty).Value(metrics.Distinct.EstimateForAgent(0));
        foreach (var (id, runtime) in agents)
        {
            w.Sample("chronoguard_distinct_domains").Label("agent", id).Value(metrics.Distinct.EstimateForAgent(runtime!.Index));
        }

        w.Family("chronoguard_new_domains_5m", "gauge", "Domains each agent reached for the first time in the last 5 minutes: a sudden rise is fan-out (scanning, exfiltration) before any quota trips.");
        w.Sample("chronoguard_new_domains_5m").Label("agent", string.Empty).Value(metrics.NewDomains.Count(0, minute));
        foreach (var (id, runtime) in agents)
        {
            w.Sample("chronoguard_new_domains_5m").Label("agent", id).Value(metrics.NewDomains.Count(runtime!.Index, minute));
        }

        var top = metrics.Domains.Snapshot();
        w.Family("chronoguard_top_domain_requests", "gauge", $"Requests to the {TopDomains} busiest domains since start (Count-Min estimate: never below the truth, above it by at most the error bound with 98% probability).");
        for (var i = 0; i < top.Length && i < TopDomains; i++)
        {
            w.Sample("chronoguard_top_domain_requests").Label("domain", top[i].Domain).Value(top[i].Estimate);
        }

        w.Family("chronoguard_top_domain_error_bound", "gauge", "The Count-Min error bound of chronoguard_top_domain_requests (e/width of all requests).");
        w.Sample("chronoguard_top_domain_error_bound").Value(metrics.Domains.Sketch.ErrorBound);

        w.Family("chronoguard_policy_reloads_total", "counter", "Policy reloads by result.");
        w.Sample("chronoguard_policy_reloads_total").Label("result", "ok").Value(metrics.ReloadsOk);
        w.Sample("chronoguard_policy_reloads_total").Label("result", "rejected").Value(metrics.ReloadsRejected);

        var current = policy.Current;
        w.Family("chronoguard_policy_info", "gauge", "The policy in force: the SHA-256 of its file (\"\" without one) and its mode; always 1.");
        w.Sample("chronoguard_policy_info").Label("sha256", current.SourceSha256).Label("mode", current.IsObserve ? "observe" : "enforce").Value(1);
        w.Family("chronoguard_policy_last_reload_success_timestamp_seconds", "gauge", "Unix time the policy in force was loaded (the start, or the last successful reload).");
        w.Sample("chronoguard_policy_last_reload_success_timestamp_seconds").Value(policy.LoadedAt.ToUnixTimeMilliseconds() / 1000.0);
        w.Family("chronoguard_build_info", "gauge", "The running build: its version; always 1.");
        w.Sample("chronoguard_build_info").Label("version", version).Value(1);

        return (200, PrometheusWriter.ContentType);
    }

    /// <summary>Only the (decision, reason) pairs that occurred: ~75 reasons × 6 decisions per agent would be mostly zeros.</summary>
    private static void DecisionSamples(PrometheusWriter w, string agent, AgentMetrics m)
    {
        for (var r = 0; r < m.Reasons.Count; r++)
        {
            for (var d = 0; d < DecisionNames.Count; d++)
            {
                var count = m.Decisions((Decision)d, r);
                if (count > 0)
                {
                    w.Sample("chronoguard_decisions_total").Label("agent", agent).Label("decision", DecisionNames.Name((Decision)d)).Label("reason", m.Reasons.Names[r]).Value(count);
                }
            }
        }
    }

    public (int Status, string ContentType) RenderStats(IBufferWriter<byte> body)
    {
        var agents = Agents();
        var decisions = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal)
        {
            [string.Empty] = Decisions(metrics.Unauthenticated),
        };
        var reasons = new Dictionary<string, Dictionary<string, Dictionary<string, long>>>(StringComparer.Ordinal)
        {
            [string.Empty] = DecisionReasonCounts(metrics.Unauthenticated),
        };
        foreach (var (id, runtime) in agents)
        {
            var counters = metrics.ForAgent(runtime!.Index);
            decisions[id] = Decisions(counters);
            reasons[id] = DecisionReasonCounts(counters);
        }

        var current = policy.Current;
        var (seq, hash) = audit?.Head ?? (-1, new byte[32]);
        var document = new StatsDocument
        {
            Version = version,
            UptimeSeconds = (long)Stopwatch.GetElapsedTime(_started).TotalSeconds,
            Connections = new ConnectionStats(proxy?.ActiveConnections ?? 0, proxy?.AcceptedTotal ?? 0),
            DecisionsByAgent = decisions,
            DecisionReasonsByAgent = reasons,
            TopDomains = TopDomainList(),
            DistinctDomains = Distinct(agents),
            NewDomains5m = NewDomains(agents),
            Bytes = new ByteStats(metrics.BytesUp, metrics.BytesDown),
            Audit = new AuditStats(audit?.Healthy ?? false, audit?.Options.Durability ?? string.Empty, audit?.QueueDepth ?? 0, audit?.RecordsTotal ?? 0, audit?.BackPressureTotal ?? 0, new AuditHead(seq, Convert.ToHexStringLower(hash))),
            Policy = new PolicyStats(policy.Path, current.SourceSha256, current.IsObserve, policy.Version, metrics.ReloadsOk, metrics.ReloadsRejected),
        };
        using var json = new Utf8JsonWriter(body);
        JsonSerializer.Serialize(json, document, StatsJsonContext.Default.StatsDocument);
        return (200, "application/json");
    }

    private TopDomainStats[] TopDomainList()
    {
        var top = metrics.Domains.Snapshot();
        var list = new TopDomainStats[Math.Min(top.Length, TopDomains)];
        for (var i = 0; i < list.Length; i++)
        {
            list[i] = new TopDomainStats(top[i].Domain, top[i].Estimate, top[i].ErrorBound);
        }

        return list;
    }

    private DistinctDomainStats Distinct((string Id, AgentRuntime? Runtime)[] agents)
    {
        var rse = Analytics.HyperLogLog.RelativeStandardError;
        var byAgent = new Dictionary<string, DistinctEstimate>(StringComparer.Ordinal)
        {
            [string.Empty] = new(metrics.Distinct.EstimateForAgent(0), rse),
        };
        foreach (var (id, runtime) in agents)
        {
            byAgent[id] = new(metrics.Distinct.EstimateForAgent(runtime!.Index), rse);
        }

        return new DistinctDomainStats(new DistinctEstimate(metrics.Distinct.Global.Estimate(), rse), byAgent);
    }

    private Dictionary<string, long> NewDomains((string Id, AgentRuntime? Runtime)[] agents)
    {
        var minute = policy.Time.GetUtcNow().UtcTicks / TimeSpan.TicksPerMinute;
        var counts = new Dictionary<string, long>(StringComparer.Ordinal) { [string.Empty] = metrics.NewDomains.Count(0, minute) };
        foreach (var (id, runtime) in agents)
        {
            counts[id] = metrics.NewDomains.Count(runtime!.Index, minute);
        }

        return counts;
    }

    /// <summary>Decision name → reason → count, the pairs that occurred (as in <c>/metrics</c>).</summary>
    private static Dictionary<string, Dictionary<string, long>> DecisionReasonCounts(AgentMetrics m)
    {
        var byDecision = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        for (var d = 0; d < DecisionNames.Count; d++)
        {
            for (var r = 0; r < m.Reasons.Count; r++)
            {
                var count = m.Decisions((Decision)d, r);
                if (count > 0)
                {
                    var name = DecisionNames.Name((Decision)d);
                    var byReason = byDecision.TryGetValue(name, out var existing) ? existing : byDecision[name] = new Dictionary<string, long>(StringComparer.Ordinal);
                    byReason[m.Reasons.Names[r]] = count;
                }
            }
        }

        return byDecision;
    }

    private static Dictionary<string, long> Decisions(AgentMetrics m)
    {
        var d = new Dictionary<string, long>(DecisionNames.Count, StringComparer.Ordinal);
        for (var i = 0; i < DecisionNames.Count; i++)
        {
            d[DecisionNames.Name((Decision)i)] = m.Decisions((Decision)i);
        }

        return d;
    }
}
