using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace ChronoGuard.Policy;

internal static partial class PolicyCompiler
{
    private static List<Rule> CompileRules(PolicyEntry policy, string at)
    {
        var rules = policy.Rules ?? [];
        if (rules.Count > MaxRulesPerPolicy)
        {
            throw new PolicyProblem($"{at}.rules", $"{rules.Count} rules; at most {MaxRulesPerPolicy}");
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
                _ => throw new PolicyProblem($"{path}.action", rule.Action is null ? "is required (allow, deny, log or rate_limit)" : $"must be allow, deny, log or rate_limit (got \"{rule.Action}\")"),
            };
            var when = rule.When ?? [];
            if (when.Count > MaxConditionsPerRule)
            {
                throw new PolicyProblem($"{path}.when", $"{when.Count} conditions; at most {MaxConditionsPerRule}");
            }

            var conditions = new Condition[when.Count];
            for (var c = 0; c < when.Count; c++)
            {
                conditions[c] = CompileCondition(when[c], $"{path}.when[{c}]", string.IsNullOrEmpty(rule.Name) ? $"{policy.Name}#{r}" : rule.Name);
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

    private static Condition CompileCondition(ConditionEntry c, string path, string ruleName)
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
            _ => throw new PolicyProblem($"{path}.field", c.Field is null ? "is required (domain, port, method, path, user_agent, source_ip, day_of_week, hour)" : $"unknown field \"{c.Field}\" (domain, port, method, path, user_agent, source_ip, day_of_week, hour)"),
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
            _ => throw new PolicyProblem($"{path}.op", c.Op is null ? "is required" : $"unknown operator \"{c.Op}\""),
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
            throw new PolicyProblem($"{path}.op", $"\"{c.Op}\" does not apply to field \"{c.Field}\"");
        }

        if (c.IgnoreCase && !textual)
        {
            throw new PolicyProblem($"{path}.ignoreCase", $"applies to text fields only (path, user_agent; domain and method always ignore case), not \"{c.Field}\"");
        }

        // domain and method are case-insensitive by nature; path and user_agent are what the origin reads.
        var ignoreCase = field is RuleField.Domain or RuleField.Method || c.IgnoreCase;
        var values = c.Values ?? throw new PolicyProblem($"{path}.value", "is required");
        if (op is RuleOp.In or RuleOp.NotIn && !c.ValueIsArray)
        {
            throw new PolicyProblem($"{path}.value", $"\"{c.Op}\" takes an array");
        }
        if (field == RuleField.SourceIp)
        {
            var nets = new IPNetwork[values.Count];
            for (var i = 0; i < values.Count; i++)
            {
                var v = values[i];
                if (!IPNetwork.TryParse(v.Contains('/', StringComparison.Ordinal) ? v : v + (v.Contains(':', StringComparison.Ordinal) ? "/128" : "/32"), out nets[i]))
                {
                    throw new PolicyProblem($"{path}.value", $"\"{v}\" is not an IP address or CIDR range");
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
                    throw new PolicyProblem($"{path}.value", $"\"{values[i]}\" is not a number{(field == RuleField.DayOfWeek ? " or a day" : string.Empty)}");
                }
            }

            if (op is RuleOp.Gt or RuleOp.Lt && numbers.Length != 1)
            {
                throw new PolicyProblem($"{path}.value", $"\"{c.Op}\" takes one number");
            }

            return new Condition { Field = field, Op = op, Numbers = numbers };
        }

        if (op == RuleOp.Regex)
        {
            if (values.Count != 1)
            {
                throw new PolicyProblem($"{path}.value", "regex takes one pattern");
            }

            return new Condition { Field = field, Op = op, IgnoreCase = ignoreCase, Pattern = CompileRegex(values[0], ignoreCase, $"{path}.value", ruleName) };
        }

        var strings = new byte[values.Count][];
        for (var i = 0; i < values.Count; i++)
        {
            var v = field == RuleField.Domain ? DomainNames.NormalizeHost(values[i]) : values[i];
            strings[i] = Encoding.UTF8.GetBytes(v);
            if (field == RuleField.Path && NeverInNormalPath(v, whole: op is RuleOp.Equals or RuleOp.NotEquals or RuleOp.In or RuleOp.NotIn) is { } why)
            {
                throw new PolicyProblem($"{path}.value", $"rule \"{ruleName}\": \"{v}\" can never match: rules see the normalised path without the query, which never {why}");
            }
        }

        return new Condition { Field = field, Op = op, IgnoreCase = ignoreCase, Strings = strings };
    }

    /// <summary>
    /// Why a path value can never match a normalised path (SPEC §4), or null: such a condition would
    /// silently never hold, and a deny rule written that way fails open.
    /// </summary>
    private static string? NeverInNormalPath(string value, bool whole)
    {
        if (whole && !value.StartsWith('/'))
        {
            return "lacks the leading \"/\"";
        }

        if (whole && (value.EndsWith("/.", StringComparison.Ordinal) || value.EndsWith("/..", StringComparison.Ordinal)))
        {
            return "ends in a dot segment";
        }

        string[] never = ["?", "//", "/./", "/../", "\\"];
        foreach (var n in never)
        {
            if (value.Contains(n, StringComparison.Ordinal))
            {
                return $"contains \"{n}\"";
            }
        }

        for (var i = value.IndexOf('%', StringComparison.Ordinal); i >= 0; i = value.IndexOf('%', i + 1))
        {
            if (i + 2 >= value.Length || !Uri.IsHexDigit(value[i + 1]) || !Uri.IsHexDigit(value[i + 2]))
            {
                return "holds invalid percent-encoding";
            }

            var c = (char)Convert.ToInt32(value.Substring(i + 1, 2), 16);
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '/' or '\\' or '\0')
            {
                return $"holds \"{value.Substring(i, 3)}\" (decoded, or refused)";
            }
        }

        return null;
    }

    /// <summary>Longest regex pattern accepted (the automaton is built from it at load).</summary>
    internal const int MaxRegexLength = 1000;

    /// <summary>
    /// Linear-time matching (<see cref="RegexOptions.NonBacktracking"/>) so hostile input cannot buy CPU:
    /// no match timeout is needed, so none can fire and be taken as "no match" (which fails a deny
    /// rule open). A construct that needs backtracking is a load error naming the rule.
    /// </summary>
    private static Regex CompileRegex(string pattern, bool ignoreCase, string path, string ruleName)
    {
        if (pattern.Length > MaxRegexLength)
        {
            throw new PolicyProblem(path, $"rule \"{ruleName}\": the regex is {pattern.Length} characters long; at most {MaxRegexLength}");
        }

        try
        {
            var options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
            return new Regex(pattern, options, Regex.InfiniteMatchTimeout);
        }
        catch (RegexParseException ex)
        {
            throw new PolicyProblem(path, $"rule \"{ruleName}\": invalid regex at character {ex.Offset}: {ParseError(ex.Error)}");
        }
        catch (NotSupportedException ex)
        {
            // The message names the construct ("... containing: 'backreference (\1)'."); say it plainly.
            var construct = ex.Message.LastIndexOf(": '", StringComparison.Ordinal) is var at and >= 0 ? ex.Message[(at + 3)..].TrimEnd('.', '\'') : "a construct that needs backtracking";
            throw new PolicyProblem(path, $"rule \"{ruleName}\": the regex uses {construct}, which linear-time matching cannot take (backreferences, lookarounds, atomic and conditional groups are not supported)");
        }
        catch (ArgumentException)
        {
            // Not the runtime's message: under NativeAOT it is a resource key.
            throw new PolicyProblem(path, $"rule \"{ruleName}\": invalid regex");
        }
    }

    /// <summary>"InsufficientClosingParentheses" becomes "insufficient closing parentheses".</summary>
    private static string ParseError(RegexParseError error)
    {
        var name = error.ToString();
        var words = new StringBuilder(name.Length + 8);
        foreach (var ch in name)
        {
            if (char.IsUpper(ch) && words.Length > 0)
            {
                words.Append(' ');
            }

            words.Append(char.ToLowerInvariant(ch));
        }

        return words.ToString();
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
