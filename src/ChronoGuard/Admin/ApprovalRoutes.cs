using System.Globalization;
using System.Text.Json;
using ChronoGuard.Approvals;
using ChronoGuard.Policy;

namespace ChronoGuard.Admin;

/// <summary>
/// <c>GET /v1/pending</c> and <c>POST /v1/pending/ID</c> (SPEC §9): the open approvals, and an
/// operator's answer to one. An approval is a runtime grant like any other (chained with its actor and
/// reason, kept in <c>grants.json</c>); making it releases what it covers (<see cref="RuntimeGrantStore.Added"/>).
/// </summary>
internal static class ApprovalRoutes
{
    /// <summary>What an approval lasts when <c>for</c> is not given.</summary>
    public static readonly TimeSpan DefaultFor = TimeSpan.FromHours(1);

    private const string Shape = "{\"approve\": true|false, \"for\": \"1h\", \"scope\": \"host\"|\"suffix\", \"reason\": \"...\"}";

    public static void Map(AdminServer server, PendingApprovals pending, RuntimeGrantStore grants, TimeProvider time)
    {
        server.Map("GET", "/v1/pending", (_, _) => Task.FromResult(AdminResponse.Json(200, w =>
        {
            w.WriteStartArray();
            foreach (var p in pending.List())
            {
                Write(w, p);
            }

            w.WriteEndArray();
        })));

        server.MapPrefix("POST", "/v1/pending/", async (request, id) =>
        {
            if (pending.Find(id) is not { } entry)
            {
                return AdminResponse.Error(404, $"no open approval {id}: it was settled, timed out, or never existed (chronoguard pending lists the open ones)");
            }

            var answer = Parse(request.Body);
            if (answer.Error is { } problem)
            {
                return AdminResponse.Error(400, problem);
            }

            if (!answer.Approve)
            {
                var refused = await pending.DenyAsync(id, request.Actor, answer.Reason).ConfigureAwait(false);
                return refused is not { } n
                    ? AdminResponse.Error(404, $"no open approval {id}: it was settled or timed out meanwhile")
                    : AdminResponse.Json(200, w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("id", id);
                        w.WriteBoolean("approved", false);
                        w.WriteNumber("refused", n);
                        w.WriteEndObject();
                    });
            }

            var domain = entry.Host;
            if (answer.Suffix)
            {
                var dot = entry.Host.IndexOf('.', StringComparison.Ordinal);
                var parent = dot < 0 ? string.Empty : entry.Host[(dot + 1)..];
                if (parent.Length == 0 || !parent.Contains('.', StringComparison.Ordinal) || PublicSuffixes.IsPublicSuffix(parent) || System.Net.IPAddress.TryParse(entry.Host, out _))
                {
                    return AdminResponse.Error(400, $"$.scope: suffix would grant *.{(parent.Length == 0 ? entry.Host : parent)}, every site under a public suffix; approve the host alone");
                }

                domain = "*." + parent;
            }

            var reason = answer.Reason ?? $"approval {id}: {entry.Method} {entry.Host}:{entry.Port.ToString(CultureInfo.InvariantCulture)}";
            var (grant, status, error) = await grants.AddAsync(entry.Agent, [domain], time.GetUtcNow() + answer.For, reason, request.Actor).ConfigureAwait(false);
            return grant is null
                ? AdminResponse.Error(status, error!)
                : AdminResponse.Json(201, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("id", id);
                    w.WriteBoolean("approved", true);
                    w.WritePropertyName("grant");
                    RuntimeGrantStore.Write(w, grant);
                    w.WriteEndObject();
                });
        });
    }

    public static void Write(Utf8JsonWriter w, in PendingApprovalView p)
    {
        w.WriteStartObject();
        w.WriteString("id", p.Id);
        w.WriteString("agent", p.Agent);
        w.WriteString("host", p.Host);
        w.WriteNumber("port", p.Port);
        w.WriteString("method", p.Method);
        w.WriteString("source", p.Source);
        w.WriteNumber("held", p.Held);
        w.WriteString("since", AdminApi.Iso(p.Created));
        w.WriteString("expires", AdminApi.Iso(p.Expires));
        w.WriteEndObject();
    }

    private readonly record struct Answer(bool Approve, TimeSpan For, bool Suffix, string? Reason, string? Error);

    private static Answer Parse(byte[] body)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return Fail("the body is not JSON (expected " + Shape + ")");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return Fail("$: must be an object " + Shape);
            }

            bool? approve = null;
            var span = DefaultFor;
            var suffix = false;
            string? reason = null;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "approve" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                        approve = p.Value.GetBoolean();
                        break;
                    case "approve":
                        return Fail("$.approve: must be true or false");
                    case "for" when p.Value.ValueKind == JsonValueKind.String && AdminDuration.TryParse(p.Value.GetString(), out var d):
                        span = d;
                        break;
                    case "for":
                        return Fail($"$.for: '{p.Value}' is not a duration (allowed: a whole number and s, m, h or d, such as 90s, 10m, 1h, 7d)");
                    case "scope" when p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is "host" or "suffix":
                        suffix = p.Value.GetString() == "suffix";
                        break;
                    case "scope":
                        return Fail($"$.scope: must be \"host\" or \"suffix\" (got {p.Value.GetRawText()})");
                    case "reason" when p.Value.ValueKind == JsonValueKind.String:
                        reason = p.Value.GetString();
                        break;
                    case "reason":
                        return Fail("$.reason: must be a string");
                    default:
                        return Fail($"$.{p.Name}: unknown field (allowed: approve, for, scope, reason)");
                }
            }

            if (approve is null)
            {
                return Fail("$.approve: is required (true approves, false refuses)");
            }

            if (reason is not null && (reason.Length > RuntimeGrantStore.MaxReasonChars || reason.Any(char.IsControl)))
            {
                return Fail($"$.reason: one line of at most {RuntimeGrantStore.MaxReasonChars} characters");
            }

            return new Answer(approve.Value, span, suffix, string.IsNullOrWhiteSpace(reason) ? null : reason, null);
        }
    }

    private static Answer Fail(string problem) => new(false, default, false, null, problem);
}
