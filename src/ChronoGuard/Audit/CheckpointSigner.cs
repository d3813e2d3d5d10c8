using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// Signs the committed head <c>{seq, hash, time}</c> every <see cref="AuditOptions.CheckpointIntervalMs"/>
/// and at stop, appends it to checkpoints.jsonl in the audit directory and hands it to
/// <see cref="Signed"/> (the host writes it as one log line, so the cluster's log pipeline holds a copy
/// the node cannot rewrite). Runs on the writer thread after a commit: a checkpoint never names a
/// record that is not durable.
/// </summary>
internal sealed class CheckpointSigner : IDisposable
{
    private readonly ECDsa _key;
    private readonly string _file;
    private readonly long _intervalTicks;
    private readonly TimeProvider _time;
    private readonly string _keyId;
    private long _lastSignedAt;
    private long _lastSignedSeq = -1;
    private Checkpoint? _latest;
    private long _signedTotal;
    private long _failedTotal;

    private CheckpointSigner(ECDsa key, string directory, int intervalMs, TimeProvider time)
    {
        _key = key;
        _file = Path.Combine(directory, Checkpoint.FileName);
        _intervalTicks = Math.Max(1, intervalMs) * Stopwatch.Frequency / 1000;
        _time = time;
        _keyId = CheckpointKeys.KeyId(key);
        _lastSignedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>Null when <see cref="AuditOptions.SigningKeyFile"/> is not set.</summary>
    public static CheckpointSigner? Open(AuditOptions options, TimeProvider time) =>
        string.IsNullOrEmpty(options.SigningKeyFile)
            ? null
            : new CheckpointSigner(CheckpointKeys.LoadPrivate(options.SigningKeyFile), options.Directory, options.CheckpointIntervalMs, time);

    /// <summary>The newest checkpoint signed by this process (for /audit/head).</summary>
    public Checkpoint? Latest => Volatile.Read(ref _latest);

    public long SignedTotal => Volatile.Read(ref _signedTotal);

    /// <summary>Checkpoints that could not be appended to checkpoints.jsonl (still handed to <see cref="Signed"/>).</summary>
    public long FailedTotal => Volatile.Read(ref _failedTotal);

    /// <summary>Called on the writer thread with each checkpoint, and the file error if appending failed.</summary>
    public Action<Checkpoint, string?>? Signed { get; set; }

    /// <summary>
    /// The writer's one call, after every commit: signs when the interval has passed or at stop
    /// (<paramref name="final"/>), and only when the head moved since the last checkpoint.
    /// </summary>
    public void OnCommitted(long seq, byte[] hash, bool final)
    {
        var now = Stopwatch.GetTimestamp();
        if (seq <= _lastSignedSeq || (!final && now - _lastSignedAt < _intervalTicks))
        {
            return;
        }

        _lastSignedAt = now;
        _lastSignedSeq = seq;
        var checkpoint = Sign(seq, hash);
        string? error = null;
        try
        {
            using var file = new FileStream(_file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            file.Write(Encoding.UTF8.GetBytes(checkpoint.ToJson() + "\n"));
            file.Flush(flushToDisk: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref _failedTotal);
            error = ex.Message;
        }

        Volatile.Write(ref _latest, checkpoint);
        Interlocked.Increment(ref _signedTotal);
        Signed?.Invoke(checkpoint, error);
    }

    /// <summary>Signs one head (also what the signing benchmark measures).</summary>
    public Checkpoint Sign(long seq, byte[] hash)
    {
        var hex = Convert.ToHexStringLower(hash);
        var time = AuditEntry.RenderTime((_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100)!;
        var signature = _key.SignData(Checkpoint.Message(seq, hex, time), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        return new Checkpoint(seq, hex, time, _keyId, Convert.ToBase64String(signature));
    }

    public void Dispose() => _key.Dispose();
}
