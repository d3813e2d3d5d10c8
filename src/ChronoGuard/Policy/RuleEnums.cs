namespace ChronoGuard.Policy;

internal enum RuleField : byte
{
    Domain,
    Port,
    Method,
    Path,
    UserAgent,
    SourceIp,
    DayOfWeek,
    Hour,
}

internal enum RuleOp : byte
{
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    Cidr,
    Gt,
    Lt,
}

internal enum RuleAction : byte
{
    Allow,
    Deny,
    Log,
    RateLimit,
}
