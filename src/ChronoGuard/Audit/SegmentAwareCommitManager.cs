using System.Buffers.Binary;
using System.Globalization;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// FASTER's commit manager with fast-commit throttling, plus two rules. The metadata file is also
/// written whenever the log's begin address or its tail segment changed since the last metadata
/// write: recovery scans forward from the last metadata file for fast-commit records, so that file
/// must never point into a segment retention (or an operator) may delete. And the file is written
/// here, atomically (<see cref="AtomicFile"/>), not by FASTER's device write in place: that one
/// creates <c>commit.N.0</c> first and on a full disk leaves it empty, which the next start cannot
/// recover from. A write that fails leaves the previous commit file whole, is retried at the next
/// commit, and is reported through <paramref name="onFailure"/> (the writer faults and recovers);
/// it never throws into FASTER's flush callback, which would take the process down. An instance the
/// writer has replaced (<paramref name="isCurrent"/> false: abandoned after a fault, its commit maybe
/// still completing) writes and deletes nothing: its metadata is older than the log's. A read-only
/// instance (a reader beside the writer) deletes nothing either.
/// </summary>
internal sealed class SegmentAwareCommitManager(DeviceLogCommitCheckpointManager inner, int segmentBits, string directory, int throttle, bool readOnly, Action<string>? onFailure = null, Func<bool>? isCurrent = null) : ILogCommitManager
{
    private long _metadataBegin = -1;
    private long _metadataSegment = -1;
    private long _commits;

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        if (isCurrent is not null && !isCurrent())
        {
            return;
        }

        var segment = untilAddress >> segmentBits;
        var force = forceWriteMetadata || beginAddress != _metadataBegin || segment != _metadataSegment;
        // FASTER's own throttle: the first commit and every throttle-th one write the file.
        if (!force && throttle > 0 && _commits++ % throttle != 0)
        {
            return;
        }

        try
        {
            Write(commitMetadata, commitNum);
            _metadataBegin = beginAddress;
            _metadataSegment = segment;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _metadataSegment = -1;
            onFailure?.Invoke($"the commit file log-commits/commit.{commitNum}.0 could not be written ({ex.Message.ReplaceLineEndings(" ")}); the previous one is kept");
        }
    }

    /// <summary>FASTER's layout: a 4-byte length, the metadata, zeros to the 512-byte sector.</summary>
    private void Write(byte[] metadata, long commitNum)
    {
        var folder = Path.Combine(directory, FasterLogFiles.CommitsFolder);
        Directory.CreateDirectory(folder);
        var size = (sizeof(int) + metadata.Length + 511) & ~511;
        var bytes = new byte[size];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, metadata.Length);
        metadata.CopyTo(bytes, sizeof(int));
        // The temp file lives outside log-commits, where FASTER and the damage scan list commit files.
        AtomicFile.Replace(Path.Combine(folder, CommitFile(commitNum)), bytes, Path.Combine(directory, "commit.tmp"));
        foreach (var file in Directory.EnumerateFiles(folder, "commit.*"))
        {
            var name = Path.GetFileName(file);
            var dot = name.IndexOf('.', 7);
            if (dot > 7 && long.TryParse(name.AsSpan(7, dot - 7), NumberStyles.None, CultureInfo.InvariantCulture, out var older) && older < commitNum)
            {
                File.Delete(file);
            }
        }
    }

    private static string CommitFile(long commitNum) => "commit." + commitNum.ToString(CultureInfo.InvariantCulture) + ".0";

    public byte[] GetCommitMetadata(long commitNum) => inner.GetCommitMetadata(commitNum);

    public IEnumerable<long> ListCommits() => inner.ListCommits();

    // Only the writer's current instance ever deletes a commit file. FASTER's recovery removes every
    // commit but the one it recovered from (removeOutdated): run by a reader beside a running writer
    // (verify, export, the scan), that deleted the writer's newer commit files, so the log had data and
    // no commit metadata until the next metadata write; an abandoned instance must not touch them either.
    private bool MayDelete => !readOnly && (isCurrent is null || isCurrent());

    public void RemoveCommit(long commitNum)
    {
        if (MayDelete)
        {
            inner.RemoveCommit(commitNum);
        }
    }

    public void RemoveAllCommits()
    {
        if (MayDelete)
        {
            inner.RemoveAllCommits();
        }
    }

    public void OnRecovery(long commitNum)
    {
        if (MayDelete)
        {
            inner.OnRecovery(commitNum);
        }
    }

    public void Dispose() => inner.Dispose();
}
