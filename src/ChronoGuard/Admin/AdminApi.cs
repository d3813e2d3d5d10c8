using System.Globalization;
using ChronoGuard.Approvals;
using ChronoGuard.Audit;
using ChronoGuard.Policy;

namespace ChronoGuard.Admin;

/// <summary>The routes of SPEC §9: reload, denials, runtime grants, pending approvals.</summary>
internal static class AdminApi
{
    /// <param name="reload">Reloads the policy as SIGHUP does (records and logs it) and returns the outcome.</param>
    /// <param name="audit">The writer feeding <paramref name="denials"/>: an answer waits until every record claimed before it has been chained.</param>
    public static void Map(AdminServer server, Func<string, PolicyLoadOutcome> reload, PolicyEngine engine, DenialTable denials, RuntimeGrantStore grants, PendingApprovals pending, AuditWriter audit, TimeProvider time)
    {
        ApprovalRoutes.Map(server, pending, grants, time);
        server.Map("POST", "/v1/reload", (request, _) =>
        {
            var outcome = reload("admin API (" + request.Actor + ")");
            return Task.FromResult(AdminResponse.Json(outcome.Ok ? 200 : 422, w =>
            {
                w.WriteStartObject();
                w.WriteString("outcome", outcome.Ok ? (engine.Path is null ? "observe" : "loaded") : "rejected");
                w.WriteString("sha256", outcome.Sha256);
                w.WriteString("path", engine.Path);
                if (outcome.Error is { } error)
                {
                    w.WriteString("error", error);
                }
                else if (engine.Path is null)
                {
                    w.WriteString("note", "no policy file: observe mode has nothing to reload");
                }

                w.WriteEndObject();
            }));
        });

        server.Map("GET", "/v1/denials", async (request, _) =>
        {
            // As of the request's arrival: a refusal answered before it is counted in it (false only
            // when the writer cannot commit; then what was chained is still the best answer).
            var caughtUp = await audit.WaitDurableAsync(audit.LastClaimedSeq).ConfigureAwait(false);
            var now = time.GetUtcNow();
            var sinceText = request.Param("since");
            DateTimeOffset since;
            if (sinceText is null or "")
            {
                since = DateTimeOffset.UnixEpoch;
            }
            else if (AdminDuration.TryParse(sinceText, out var back))
            {
                since = now - back;
            }
            else if (!DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out since))
            {
                return AdminResponse.Error(400, $"since: '{sinceText}' is not a time (allowed: 90s, 10m, 1h, 7d, or ISO-8601)");
            }

            var agent = request.Param("agent") is { Length: > 0 } a ? a : null;
            var rows = denials.Snapshot((since - DateTimeOffset.UnixEpoch).Ticks * 100, agent);
            return AdminResponse.Json(200, w =>
            {
                w.WriteStartObject();
                w.WriteString("since", Iso(since));
                w.WriteNumber("bound", DenialTable.Capacity);
                w.WriteNumber("evicted", denials.Evicted);
                w.WriteBoolean("complete", caughtUp);
                w.WritePropertyName("denials");
                w.WriteStartArray();
                foreach (var e in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("agent", e.Agent);
                    w.WriteString("host", e.Host);
                    w.WriteNumber("port", e.Port);
                    w.WriteString("decision", e.Decision);
                    w.WriteString("reason", e.Reason);
                    w.WriteString("dialedIp", e.DialedIp);
                    w.WriteBoolean("enforced", e.Enforced);
                    w.WriteNumber("count", e.Count);
                    w.WriteString("firstSeen", Iso(DateTimeOffset.UnixEpoch.AddTicks(e.FirstNs / 100)));
                    w.WriteString("lastSeen", Iso(DateTimeOffset.UnixEpoch.AddTicks(e.LastNs / 100)));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
        });

        server.Map("GET", "/v1/grants", (_, _) => Task.FromResult(AdminResponse.Json(200, w =>
        {
            w.WriteStartArray();
            foreach (var g in grants.List())
            {
                RuntimeGrantStore.Write(w, g);
            }

            w.WriteEndArray();
        })));

        server.Map("POST", "/v1/grants", async (request, _) =>
        {
            var (grant, status, error) = await grants.AddAsync(request.Body, request.Actor).ConfigureAwait(false);
            return grant is null ? AdminResponse.Error(status, error!) : AdminResponse.Json(status, w => RuntimeGrantStore.Write(w, grant));
        });

        server.MapPrefix("DELETE", "/v1/grants/", async (request, id) =>
        {
            var (found, status, error) = await grants.RevokeAsync(id, request.Actor, request.Param("reason")).ConfigureAwait(false);
            return !found || error is not null
                ? AdminResponse.Error(status, error!)
                : AdminResponse.Json(200, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("id", id);
                    w.WriteBoolean("revoked", true);
                    w.WriteEndObject();
                });
        });
    }

    /// <summary>How every admin answer writes a time: UTC, milliseconds, <c>Z</c>.</summary>
    internal static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
