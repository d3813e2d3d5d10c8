using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChronoGuard.Policy;

internal static partial class PolicyCompiler
{
    private static List<Rule> CompileRules(PolicyEntry policy, string at, Func<string, string, Exception> fail)
    {
        var rules = policy.Rules ?? [];
        if (rules.Count > MaxRulesPerPolicy)
        {
            throw fail($"{at}.rules", $"{rules.Count} rules; at most {MaxRulesPerPolicy}");
        }

        var compiled = new List<Rule>(rules.Count);
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            var path = $"{at}.rules[{r}]";
            var action = rule.Action switch
            {
                "allow" => RuleAction.Allow,
                "deny" => RuleAction.Deny,
                "log" => RuleAction.Log,
                "rate_limit" => RuleAction.RateLimit,
                _ => throw fail($"{path}.action", $"must be allow, deny, log or rate_limit (got \"{rule.Action}\")"),
            };
            var when = rule.When ?? [];
            if (when.Count > MaxConditionsPerRule)
            {
                throw fail($"{path}.when", $"{when.Count} conditions; at most {MaxConditionsPerRule}");
            }

            var conditions = new Condition[when.Count];
            for (var c = 0; c < when.Count; c++)
            {
                conditions[c] = CompileCondition(when[c], $"{path}.when[{c}]", fail);
            }

            compiled.Add(new Rule
            {
                Name = string.IsNullOrEmpty(rule.Name) ? $"{policy.Name}#{r}" : rule.Name,
                Priority = rule.Priority,
                Action = action,
                When = conditions,
                Origin = policy.Name!,
            });
        }

        return compiled;
    }

    private static Condition CompileCondition(ConditionEntry c, string path, Func<string, string, Exception> fail)
    {
        var field = c.Field switch
        {
            "domain" => RuleField.Domain,
            "port" => RuleField.Port,
            "method" => RuleField.Method,
            "path" => RuleField.Path,
            "user_agent" => RuleField.UserAgent,
            "source_ip" => RuleField.SourceIp,
            "day_of_week" => RuleField.DayOfWeek,
            "hour" => RuleField.Hour,
            _ => throw fail($"{path}.field", $"unknown field \"{c.Field}\" (domain, port, method, path, user_agent, source_ip, day_of_week, hour)"),
        };
        var op = c.Op switch
        {
            "equals" => RuleOp.Equals,
            "not_equals" => RuleOp.NotEquals,
            "in" => RuleOp.In,
            "not_in" => RuleOp.NotIn,
            "contains" => RuleOp.Contains,
            "starts_with" => RuleOp.StartsWith,
            "ends_with" => RuleOp.EndsWith,
            "regex" => RuleOp.Regex,
            "cidr" => RuleOp.Cidr,
            "gt" => RuleOp.Gt,
            "lt" => RuleOp.Lt,
            _ => throw fail($"{path}.op", $"unknown operator \"{c.Op}\""),
        };

        var numeric = field is RuleField.Port or RuleField.Hour or RuleField.DayOfWeek;
        var textual = field is RuleField.Domain or RuleField.Method or RuleField.Path or RuleField.UserAgent;
        var valid = op switch
        {
            RuleOp.Gt or RuleOp.Lt => numeric,
            RuleOp.Contains or RuleOp.StartsWith or RuleOp.EndsWith or RuleOp.Regex => textual,
            RuleOp.Cidr => field == RuleField.SourceIp,
            _ => true,
        };
        if (!valid)
        {
            throw fail($"{path}.op", $"\"{c.Op}\" does not apply to field \"{c.Field}\"");
        }

        var values = Values(c.Value, op is RuleOp.In or RuleOp.NotIn, $"{path}.value", fail);
        if (field == RuleField.SourceIp)
        {
            var nets = new IPNetwork[values.Count];
            for (var i = 0; i < values.Count; i++)
            {
                var v = values[i];
                if (!IPNetwork.TryParse(v.Contains('/', StringComparison.Ordinal) ? v : v + (v.Contains(':', StringComparison.Ordinal) ? "/128" : "/32"), out nets[i]))
                {
                    throw fail($"{path}.value", $"\"{v}\" is not an IP address or CIDR range");
                }
            }

            return new Condition { Field = field, Op = op, Networks = nets };
        }

        if (numeric)
        {
            var numbers = new long[values.Count];
            for (var i = 0; i < values.Count; i++)
            {
                if (field == RuleField.DayOfWeek && ParseDay(values[i]) is { } day)
                {
                    numbers[i] = (int)day;
                }
                else if (!long.TryParse(values[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out numbers[i]))
                {
                    throw fail($"{path}.value", $"\"{values[i]}\" is not a number{(field == RuleField.DayOfWeek ? " or a day" : string.Empty)}");
                }
            }

            if (op is RuleOp.Gt or RuleOp.Lt && numbers.Length != 1)
            {
                throw fail($"{path}.value", $"\"{c.Op}\" takes one number");
            }

            return new Condition { Field = field, Op = op, Numbers = numbers };
        }

        if (op == RuleOp.Regex)
        {
            if (values.Count != 1)
            {
                throw fail($"{path}.value", "regex takes one pattern");
            }

            try
            {
                // Compiled once per load; the timeout bounds a pathological pattern on hostile input.
                return new Condition { Field = field, Op = op, Pattern = new Regex(values[0], RegexOptions.CultureInvariant | RegexOptions.IgnoreCase, RegexTimeout) };
            }
            catch (ArgumentException ex)
            {
                throw fail($"{path}.value", $"invalid regex: {ex.Message}");
            }
        }

        var strings = new byte[values.Count][];
        for (var i = 0; i < values.Count; i++)
        {
            var v = field == RuleField.Domain ? DomainNames.NormalizeHost(values[i]) : values[i];
            strings[i] = Encoding.UTF8.GetBytes(v);
        }

        return new Condition { Field = field, Op = op, Strings = strings };
    }

    private static List<string> Values(JsonElement value, bool list, string path, Func<string, string, Exception> fail)
    {
        static string Scalar(JsonElement e, string path, Func<string, string, Exception> fail) => e.ValueKind switch
        {
            JsonValueKind.String => e.GetString()!,
            JsonValueKind.Number => e.GetRawText(),
            _ => throw fail(path, $"expected a string or a number, got {e.ValueKind}"),
        };

        if (value.ValueKind == JsonValueKind.Array)
        {
            var items = new List<string>();
            var i = 0;
            foreach (var e in value.EnumerateArray())
            {
                items.Add(Scalar(e, $"{path}[{i++}]", fail));
            }

            if (items.Count == 0)
            {
                throw fail(path, "must not be empty");
            }

            return items;
        }

        if (value.ValueKind == JsonValueKind.Undefined)
        {
            throw fail(path, "is required");
        }

        return list ? throw fail(path, "must be an array") : [Scalar(value, path, fail)];
    }

    /// <summary>Rules beyond this many are all evaluated on every decision (the candidate bit set lives on the stack).</summary>
    internal const int MaxIndexedRules = 4096;

    /// <summary>
    /// Puts each rule's domain condition (<c>equals</c>/<c>in</c> → exact patterns, <c>ends_with ".x"</c> →
    /// <c>*.x</c>) into the automaton, so one automaton pass yields the rules that can match a host.
    /// Every indexed pattern matches a superset of what its condition matches (the automaton is
    /// case-insensitive and label-anchored like the condition), so skipping unmatched indexed rules
    /// never changes a decision; a rule with no indexable condition is evaluated every time.
    /// </summary>
    private static int[]?[] IndexRules(List<Rule>[] ownRules, List<string> patterns, Dictionary<string, int> patternIds, out int ruleWords)
    {
        var total = 0;
        foreach (var list in ownRules)
        {
            total += list.Count;
        }

        var byPattern = new Dictionary<int, List<int>>();
        var ordinal = 0;
        foreach (var list in ownRules)
        {
            foreach (var rule in list)
            {
                rule.Ordinal = ordinal++;
                rule.Indexed = false;
                if (total > MaxIndexedRules || IndexablePatterns(rule) is not { } keys)
                {
                    continue;
                }

                rule.Indexed = true;
                foreach (var key in keys)
                {
                    if (!patternIds.TryGetValue(key, out var id))
                    {
                        id = patterns.Count;
                        patternIds[key] = id;
                        patterns.Add(key);
                    }

                    if (!byPattern.TryGetValue(id, out var rules))
                    {
                        byPattern[id] = rules = [];
                    }

                    rules.Add(rule.Ordinal);
                }
            }
        }

        ruleWords = total > MaxIndexedRules ? 0 : (total + 63) / 64;
        var result = new int[]?[patterns.Count];
        foreach (var (id, rules) in byPattern)
        {
            result[id] = [.. rules];
        }

        return result;
    }

    private static List<string>? IndexablePatterns(Rule rule)
    {
        foreach (var c in rule.When)
        {
            if (c.Field != RuleField.Domain || c.Op is not (RuleOp.Equals or RuleOp.In or RuleOp.EndsWith) || c.Strings.Length == 0)
            {
                continue;
            }

            var keys = new List<string>(c.Strings.Length);
            foreach (var bytes in c.Strings)
            {
                var value = System.Text.Encoding.ASCII.GetString(bytes);
                string? raw = c.Op == RuleOp.EndsWith
                    ? (value.Length > 1 && value[0] == '.' ? "*" + value : null)
                    : value;
                if (raw is null || DomainNames.TryNormalizePattern(raw, out var key) is not null)
                {
                    keys = null;
                    break;
                }

                keys.Add(key);
            }

            if (keys is not null)
            {
                return keys;
            }
        }

        return null;
    }
}
