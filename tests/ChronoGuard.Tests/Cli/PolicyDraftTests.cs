using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// What <c>policy suggest</c> makes of each kind of record: which refusals a draft may lift and which
/// it only names, how siblings fold (never into a public suffix, never across ports, bottom-up), and
/// what the guard needs; every draft compiles.
/// </summary>
public sealed class PolicyDraftTests
{
    [Fact]
    public void Siblings_fold_bottom_up_per_port_and_never_into_a_public_suffix()
    {
        var draft = new PolicyDraft();
        string[] hosts =
        [
            "a.two.example.com", "b.two.example.com", // two siblings: kept
            "one.github.io", "two.github.io", "three.github.io", // public suffix (PSL private section)
            "a.co.uk", "b.co.uk", "c.co.uk", // ccTLD second level
            "x.com", "y.com", "z.com", // one label
            "a.r1.cdn.example.org", "b.r1.cdn.example.org", "c.r1.cdn.example.org", "r2.cdn.example.org", "r3.cdn.example.org",
            "cdn.example.org", // the parent itself: a wildcard does not cover it
            "a.x.y.deep.example", "b.x.y.deep.example", "c.x.y.deep.example", "p1.deep.example", "p2.deep.example", "p3.deep.example", // *.x.y absorbed by *.deep
        ];
        foreach (var h in hosts)
        {
            draft.Add(Record(h, 443));
        }

        draft.Add(Record("a.svc.example.net", 8443));
        draft.Add(Record("b.svc.example.net", 8443));
        draft.Add(Record("c.svc.example.net", 443));
        draft.Add(Record("c.svc.example.net", 80));

        var policy = Compile(draft);
        Assert.Equal(
            [
                "*.cdn.example.org", "*.deep.example", "a.co.uk", "a.svc.example.net:8443", "a.two.example.com", "b.co.uk", "b.svc.example.net:8443", "b.two.example.com",
                "c.co.uk", "c.svc.example.net", "cdn.example.org", "one.github.io", "three.github.io", "two.github.io", "x.com", "y.com", "z.com",
            ],
            policy.MergedList(policy.Policies[0], blocked: false).Order(StringComparer.Ordinal));
        var text = draft.Render("test");
        Assert.Contains("\"*.cdn.example.org\", // 5 names folded: a.r1.cdn.example.org, b.r1.cdn.example.org, c.r1.cdn.example.org, r2.cdn.example.org, r3.cdn.example.org", text, StringComparison.Ordinal);
        Assert.Contains("\"*.deep.example\", // 6 names folded: a.x.y.deep.example, b.x.y.deep.example, c.x.y.deep.example, p1.deep.example, p2.deep.example, p3.deep.example", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_on_purpose_are_named_not_allowed_and_the_guard_gets_what_it_needs()
    {
        var draft = new PolicyDraft();
        draft.Add(Record("denied.test", 443, "DENY", Reasons.DefaultDeny, 403));
        draft.Add(Record("limited.test", 443, "RATE_LIMITED", Reasons.RateLimit, 429));
        draft.Add(Record("odd-port.test", 5432, "BLOCK", Reasons.PortNotAllowed, 403));
        draft.Add(Record("resolver.test", 53, "BLOCK", "dns_name_refused", 403, method: "DNS"));
        draft.Add(Record("v6.internal.example", 443, "BLOCK", Reasons.PrivateDestination, 403, dialed: "fd00::5"));
        draft.Add(Record("lan.test", 443, "ALLOW", Reasons.DefaultAllow, 200, dialed: "10.0.0.7"));
        draft.Add(Record("public.test", 443, "ALLOW", Reasons.Allowed, 200, dialed: "93.184.215.14"));
        draft.Add(Record("meta.test", 80, "BLOCK", Reasons.MetadataDestination, 403, dialed: "169.254.169.254"));
        draft.Add(Record("pastebin.com", 443, "BLOCK", Reasons.DomainBlocked, 403));
        draft.Add(Record("upload.test", 443, "POLICY_VIOLATION", Reasons.RuleDeny, 403));
        draft.Add(Record("fronted.test", 443, "BLOCK", Reasons.SniMismatch, 403));
        draft.Add(Record("nocreds.test", 443, "DENY", Reasons.AuthRequired, 407));

        var text = draft.Render("test");
        var policy = Compile(draft);
        Assert.Equal(
            ["denied.test", "lan.test", "limited.test", "odd-port.test:5432", "public.test", "resolver.test", "v6.internal.example"],
            policy.MergedList(policy.Policies[0], blocked: false).Order(StringComparer.Ordinal));
        Assert.Equal(["10.0.0.7/32", "fd00::5/128"], policy.Network.AllowedCidrs.Select(c => c.ToString()));
        Assert.Contains("//   meta.test:80 (agent bot): 169.254.169.254 is a cloud metadata address; not suggested", text, StringComparison.Ordinal);
        Assert.DoesNotContain("169.254.169.254/32", text, StringComparison.Ordinal);
        Assert.Contains("//   pastebin.com:443 (agent bot): BLOCK domain_blocked", text, StringComparison.Ordinal);
        Assert.Contains("//   upload.test:443 (agent bot): POLICY_VIOLATION rule_deny", text, StringComparison.Ordinal);
        Assert.Contains("//   fronted.test:443 (agent bot): BLOCK sni_mismatch", text, StringComparison.Ordinal);
        Assert.DoesNotContain("nocreds", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_seen_on_many_ports_gets_ranges_so_the_draft_still_loads()
    {
        var adjacent = new PolicyDraft();
        var scattered = new PolicyDraft();
        for (var p = 0; p < 200; p++)
        {
            adjacent.Add(Record("scan.test", 9000 + p));
            adjacent.Add(Record("scan.test", 10_000 + p));
            scattered.Add(Record("scan.test", 20_000 + (2 * p)));
        }

        adjacent.Add(Record("few.test", 8443));
        var policy = Compile(adjacent);
        Assert.Equal(["few.test:8443", "scan.test:10000-10199", "scan.test:9000-9199"], policy.MergedList(policy.Policies[0], blocked: false).Order(StringComparer.Ordinal));
        var wide = Compile(scattered);
        Assert.Equal(["scan.test:20000-20398"], wide.MergedList(wide.Policies[0], blocked: false));
        Assert.Contains("200 ports seen from 20000 to 20398: this range admits the ports between them too", scattered.Render("test"), StringComparison.Ordinal);
    }

    [Fact]
    public void Agents_get_a_policy_each_and_log_text_cannot_break_out_of_a_comment()
    {
        var draft = new PolicyDraft();
        draft.Add(Record("a.example.com", 443, agent: "bot-1"));
        draft.Add(Record("b.example.com", 443, agent: "bot \"2\""));
        draft.Add(Record("c.example.com", 443, "BLOCK", Reasons.DomainBlocked, 403, agent: "evil\n\"x\": 1, //"));
        var policy = Compile(draft);
        Assert.Equal(["bot \"2\"", "bot-1"], policy.Agents.Select(a => a.Id).Order(StringComparer.Ordinal));
        Assert.Equal(["b.example.com"], policy.MergedList(policy.AgentsById["bot \"2\""].Order[0], blocked: false));
        Assert.Contains("agent evil?\"x\": 1, //", draft.Render("test"), StringComparison.Ordinal);
    }

    private static CompiledPolicy Compile(PolicyDraft draft) =>
        PolicyFixture.Compile(draft.Render("test").Replace(PolicyDraft.TokenPlaceholder, "$TOKEN", StringComparison.Ordinal));

    private static AuditEntry Record(string host, int port, string decision = "ALLOW", string reason = "default_allow", int status = 200, string dialed = "", string agent = "bot", string method = "CONNECT") => new()
    {
        Kind = AuditKind.Decision,
        TimestampNs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000,
        Agent = agent,
        Host = host,
        Port = port,
        Method = method,
        Decision = decision,
        Reason = reason,
        Status = status,
        DialedIp = dialed,
        Identity = status == 407 ? AuditIdentity.Unauthenticated : AuditIdentity.Credential,
    };
}
