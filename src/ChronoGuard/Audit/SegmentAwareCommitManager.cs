using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// FASTER's commit manager with fast-commit throttling, plus one rule: the metadata file is also
/// written whenever the log's begin address or its tail segment changed since the last metadata
/// write. Recovery scans forward from the last metadata file for fast-commit records, so that file
/// must never point into a segment retention (or an operator) may delete: with this rule it always
/// points into the newest segment, and only older, whole segments can go.
/// </summary>
internal sealed class SegmentAwareCommitManager(DeviceLogCommitCheckpointManager inner, int segmentBits) : ILogCommitManager
{
    private long _metadataBegin = -1;
    private long _metadataSegment = -1;

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        var segment = untilAddress >> segmentBits;
        var force = forceWriteMetadata || beginAddress != _metadataBegin || segment != _metadataSegment;
        inner.Commit(beginAddress, untilAddress, commitMetadata, commitNum, force);
        if (force)
        {
            _metadataBegin = beginAddress;
            _metadataSegment = segment;
        }
    }

    public byte[] GetCommitMetadata(long commitNum) => inner.GetCommitMetadata(commitNum);

    public IEnumerable<long> ListCommits() => inner.ListCommits();

    public void RemoveCommit(long commitNum) => inner.RemoveCommit(commitNum);

    public void RemoveAllCommits() => inner.RemoveAllCommits();

    public void OnRecovery(long commitNum) => inner.OnRecovery(commitNum);

    public void Dispose() => inner.Dispose();
}
