using System.Text;
using ChronoGuard.Audit;

namespace ChronoGuard.Admin;

/// <summary>
/// One refused destination in the <see cref="DenialTable"/>: the key is fixed at insert, the count and
/// times are written by the audit writer's thread alone and read by the admin API with volatile reads.
/// </summary>
internal sealed class DenialEntry
{
    private static readonly AuditText[] KeyFields = [AuditText.Agent, AuditText.Host, AuditText.Decision, AuditText.Reason, AuditText.DialedIp];

    private readonly byte[][] _key;
    private long _count;
    private long _lastNs;

    public DenialEntry(in AuditRecord record)
    {
        _key = new byte[KeyFields.Length][];
        for (var i = 0; i < KeyFields.Length; i++)
        {
            _key[i] = record.Get(KeyFields[i]).ToArray();
        }

        Port = record.Port;
        Enforced = record.Enforced;
        FirstNs = record.TimestampNs;
        _lastNs = record.TimestampNs;
        _count = 1;
    }

    public string Agent => Encoding.UTF8.GetString(_key[0]);

    public string Host => Encoding.UTF8.GetString(_key[1]);

    public int Port { get; }

    public string Decision => Encoding.UTF8.GetString(_key[2]);

    public string Reason => Encoding.UTF8.GetString(_key[3]);

    public string DialedIp => Encoding.UTF8.GetString(_key[4]);

    /// <summary>False when observe mode let the refusal through (the record's <c>enforced</c>).</summary>
    public bool Enforced { get; }

    public long FirstNs { get; }

    public long Count => Volatile.Read(ref _count);

    public long LastNs => Volatile.Read(ref _lastNs);

    public bool AgentIs(string agent) => Encoding.UTF8.GetByteCount(agent) == _key[0].Length && Agent == agent;

    /// <summary>Same destination, same outcome: allocation-free, on the writer thread.</summary>
    public bool Matches(in AuditRecord record)
    {
        if (record.Port != Port || record.Enforced != Enforced)
        {
            return false;
        }

        for (var i = 0; i < KeyFields.Length; i++)
        {
            if (!record.Get(KeyFields[i]).SequenceEqual(_key[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Only the writer thread calls this; readers may see the count one ahead of the time, never torn values.</summary>
    public void Seen(long ns)
    {
        Volatile.Write(ref _count, _count + 1);
        if (ns > _lastNs)
        {
            Volatile.Write(ref _lastNs, ns);
        }
    }

    /// <summary>The hash the table places it by (FNV-1a over the key), computed the same way from a record.</summary>
    public static uint Hash(in AuditRecord record)
    {
        var h = 2166136261u;
        foreach (var field in KeyFields)
        {
            foreach (var b in record.Get(field))
            {
                h = (h ^ b) * 16777619u;
            }

            h = (h ^ 0xff) * 16777619u;
        }

        h = (h ^ (uint)record.Port) * 16777619u;
        return record.Enforced ? h : h ^ 0x9e3779b9u;
    }
}
